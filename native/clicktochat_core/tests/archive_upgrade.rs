//! Embedded archives written by earlier versions keep working: its records
//! read as they were, and new messages, to an old conversation or a new
//! one, read back merged with them in order. tests/data/embedded_v1.redb:
//! one key per conversation, the seed's structure as value;
//! embedded_v2.redb: one key per message entry; embedded_v3.redb: one key
//! per conversation and commit (two commits, the second holding two entries
//! of a conversation the first began, one at the same time as the first's
//! last). Each was written by that version's code, with the same messages.

use clicktochat_core::archive::{Archive, ArchiveConfig, Conversation, Direction, StoreConfig};
use std::path::Path;
use std::time::Duration;

const FIRST: i64 = 1_764_000_000_000_000;
const SECOND: i64 = 1_764_000_100_000_000;

fn said(archive: &Archive, agent: &str) -> Vec<(i64, String, String, String)> {
    archive
        .read(agent)
        .expect("read")
        .iter()
        .flat_map(|r| {
            r.entries
                .iter()
                .map(|e| (r.start_us, r.user.clone(), e.from.clone(), e.msg.clone()))
        })
        .collect()
}

fn owned(start: i64, visitor: &str, from: &str, msg: &str) -> (i64, String, String, String) {
    (start, visitor.into(), from.into(), msg.into())
}

#[test]
fn an_archive_file_of_one_key_a_conversation_reads_and_grows() {
    reads_and_grows("embedded_v1.redb");
}

#[test]
fn an_archive_file_of_one_key_an_entry_reads_and_grows() {
    reads_and_grows("embedded_v2.redb");
}

#[test]
fn an_archive_file_of_one_key_a_conversation_and_commit_reads_and_grows() {
    reads_and_grows("embedded_v3.redb");
}

fn reads_and_grows(file: &str) {
    let dir =
        std::env::temp_dir().join(format!("clicktochat-upgrade-{}-{file}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("old.redb");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(file),
        &path,
    )
    .expect("copy the old file");
    let archive = Archive::open(ArchiveConfig {
        path,
        store: StoreConfig::Embedded,
    })
    .expect("open the old file");
    let (v1, v2, agent1) = (
        "v1@clients.localhost",
        "v2@clients.localhost",
        "agent1@helpdesk.localhost",
    );
    let mut expected = vec![
        owned(FIRST, v1, v1, "hello | ^ %"),
        owned(FIRST, v1, v1, "same time A"),
        owned(FIRST, v1, v1, "same time B"),
        owned(FIRST, v1, agent1, "hi, how can I help?"),
        owned(SECOND, v2, v2, "bonjour é"),
        owned(SECOND, v2, agent1, "salut"),
    ];
    assert_eq!(said(&archive, agent1), expected);
    assert_eq!(
        said(&archive, "agent2@helpdesk.localhost"),
        [owned(
            1_764_000_200_000_000,
            v1,
            "agent2@helpdesk.localhost",
            "agent two"
        )]
    );

    let old = Conversation {
        visitor: v1,
        agent: agent1,
        start_us: FIRST,
    };
    let new = Conversation {
        visitor: "v3@clients.localhost",
        agent: agent1,
        start_us: SECOND + 1,
    };
    archive.message(
        &new,
        Direction::FromVisitor,
        "a new conversation",
        SECOND + 2,
    );
    archive.message(
        &old,
        Direction::FromAgent,
        "more of the old one",
        FIRST + 5000,
    );
    archive.sync(Duration::from_secs(10)).expect("sync");
    expected.insert(4, owned(FIRST, v1, agent1, "more of the old one"));
    expected.push(owned(
        SECOND + 1,
        "v3@clients.localhost",
        "v3@clients.localhost",
        "a new conversation",
    ));
    assert_eq!(said(&archive, agent1), expected);
    drop(archive);
    let _ = std::fs::remove_dir_all(&dir);
}
