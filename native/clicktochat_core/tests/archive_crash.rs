//! The embedded store is crash safe: a writer process killed with SIGKILL in
//! the middle of its batches loses nothing it had acknowledged (an entry is
//! acknowledged once `Archive::sync` has returned after it).
//!
//! The test binary plays both parts: `writer_child` does the writing when
//! run by the parent test with CLICKTOCHAT_CRASH_CHILD set, and is a no-op
//! otherwise.

use clicktochat_core::archive::{Archive, ArchiveConfig, Conversation, Direction, StoreConfig};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const AGENT: &str = "agent1@helpdesk.test";
const VISITOR: &str = "visitor@clients.test";
const CONVERSATION: Conversation = Conversation {
    visitor: VISITOR,
    agent: AGENT,
    start_us: 1_000_000,
};

fn open(path: &std::path::Path) -> Archive {
    Archive::open(ArchiveConfig {
        path: path.to_owned(),
        store: StoreConfig::Embedded,
    })
    .expect("open the archive")
}

#[test]
fn writer_child() {
    let Some(path) = std::env::var_os("CLICKTOCHAT_CRASH_CHILD") else {
        return;
    };
    let archive = open(path.as_ref());
    let mut sent = 0u64;
    loop {
        // A batch of ten, acknowledged together.
        for _ in 0..10 {
            sent += 1;
            archive.message(
                &CONVERSATION,
                Direction::FromVisitor,
                &format!("message {sent}"),
                sent as i64 * 1000,
            );
        }
        archive.sync(Duration::from_secs(30)).expect("sync");
        println!("acknowledged {sent}");
    }
}

#[test]
fn sigkill_mid_batch_loses_nothing_acknowledged() {
    let dir = std::env::temp_dir().join(format!("clicktochat-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("archive.redb");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "writer_child", "--nocapture", "--test-threads=1"])
        .env("CLICKTOCHAT_CRASH_CHILD", &path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the writer");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut acknowledged = 0u64;
    // Let it write a few hundred batches, then kill it wherever it is.
    while acknowledged < 3000 {
        let line = lines.next().expect("the writer ended early").expect("read");
        if let Some(n) = line.strip_prefix("acknowledged ") {
            acknowledged = n.parse().expect("a count");
        }
    }
    child.kill().expect("SIGKILL");
    // Acknowledgements already printed before the kill count too.
    for line in lines.map_while(Result::ok) {
        if let Some(n) = line.strip_prefix("acknowledged ") {
            acknowledged = n.parse().expect("a count");
        }
    }
    child.wait().expect("reap");

    let archive = open(&path);
    let records = archive.read(AGENT).expect("read back");
    assert_eq!(records.len(), 1);
    let entries = &records[0].entries;
    assert!(
        entries.len() as u64 >= acknowledged,
        "{} entries after a crash, {acknowledged} acknowledged",
        entries.len()
    );
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(entry.msg, format!("message {}", i + 1));
    }
    drop(archive);
    let _ = std::fs::remove_dir_all(&dir);
}
