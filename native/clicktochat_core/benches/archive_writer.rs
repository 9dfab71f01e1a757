//! What archiving a message costs, end to end through the writer thread:
//! messages handed to an embedded archive as the capture hook does, then
//! `sync` (everything committed, fsync included), for conversations of
//! growing length. The time is wall-clock over the whole burst divided by
//! the messages: the writer's cost per message when it is kept busy, which
//! is what bounds a node's archiving throughput. `cargo bench -p
//! clicktochat_core --bench archive_writer` (part of `make bench`).

use clicktochat_core::archive::{Archive, ArchiveConfig, Conversation, Direction, StoreConfig};
use std::time::{Duration, Instant};

const MESSAGES: usize = 20_000;
const AGENTS: usize = 50;

fn main() {
    println!("archive writer, embedded store, {MESSAGES} messages of 60 bytes a burst");
    println!(
        "{:>22} {:>14} {:>14}",
        "messages/conversation", "us/message", "msg/s"
    );
    for per_conversation in [10, 100, 1_000, 10_000] {
        let runs: Vec<Duration> = (0..3).map(|run| burst(per_conversation, run)).collect();
        let best = runs.into_iter().min().unwrap_or_default();
        let per_message = best.as_secs_f64() * 1e6 / MESSAGES as f64;
        println!(
            "{per_conversation:>22} {per_message:>14.2} {:>14.0}",
            1e6 / per_message
        );
    }
}

/// One burst on a fresh file: conversations of `per_conversation`
/// messages, each visitor with one of AGENTS agents, visitor and agent in
/// turn.
fn burst(per_conversation: usize, run: usize) -> Duration {
    let dir = std::env::temp_dir().join(format!(
        "clicktochat-writer-bench-{}-{per_conversation}-{run}",
        std::process::id()
    ));
    let archive = Archive::open(ArchiveConfig {
        path: dir.join("archive.redb"),
        store: StoreConfig::Embedded,
    })
    .expect("open the archive");
    let conversations = MESSAGES / per_conversation;
    let visitors: Vec<String> = (0..conversations)
        .map(|i| format!("visitor{i:06}@clients.example.com"))
        .collect();
    let agents: Vec<String> = (0..AGENTS)
        .map(|i| format!("agent{i:03}@helpdesk.example.com"))
        .collect();
    let text = "Hello, I have a question about my order number 123456789.";
    let start = Instant::now();
    for i in 0..MESSAGES {
        // Conversations interleave, as they do on a busy desk.
        let c = i % conversations;
        let conversation = Conversation {
            visitor: &visitors[c],
            agent: &agents[c % AGENTS],
            start_us: 1_795_612_320_000_000 + c as i64,
        };
        let direction = if (i / conversations).is_multiple_of(2) {
            Direction::FromVisitor
        } else {
            Direction::FromAgent
        };
        archive.message(
            &conversation,
            direction,
            text,
            1_795_612_400_000_000 + i as i64,
        );
    }
    archive
        .sync(Duration::from_secs(600))
        .expect("everything committed");
    let elapsed = start.elapsed();
    archive.close();
    let _ = std::fs::remove_dir_all(&dir);
    elapsed
}
