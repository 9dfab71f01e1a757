//! Riak round trips per archived message under a steady load: AGENTS
//! agents, each with one conversation going on, each writing
//! PER_AGENT_RATE messages a second (the load of docs/scale.md: 5 000
//! agents, 10 000 messages a second), against the Riak stand-in
//! (test/riak_standin.py). The alternatives, in the same run, interleaved:
//! a push round after every commit (push interval 0, what the archive did
//! before it batched pushes), and the default interval. The figure is the
//! steady state: requests over entries pushed between the end of the first
//! round of pushes and the end of the last one seen during the run (the
//! first and the last rounds of a run carry fewer messages). `cargo bench -p
//! clicktochat_core --bench riak_pushes [-- JSON_PATH]`.

#[path = "../tests/standin/mod.rs"]
#[allow(dead_code)] // the tests' launcher: this bench only starts fresh stand-ins
mod standin;

use clicktochat_core::archive::{
    Archive, ArchiveConfig, Conversation, Direction, RiakStoreConfig, StoreConfig,
};
use clicktochat_core::riak::RiakConfig;
use standin::StandIn;
use std::path::Path;
use std::time::{Duration, Instant};

const AGENTS: usize = 200;
const PER_AGENT_RATE: f64 = 2.0;
const RUN: Duration = Duration::from_secs(35);
const ROUNDS: usize = 1;

fn main() {
    let json = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let intervals = [Duration::ZERO, RiakStoreConfig::DEFAULT_PUSH_INTERVAL];
    println!(
        "Riak round trips per archived message: {AGENTS} agents x {PER_AGENT_RATE} \
         messages/s for {} s a run, stand-in Riak",
        RUN.as_secs()
    );
    let mut results: Vec<(Duration, Vec<f64>)> = intervals.iter().map(|&i| (i, vec![])).collect();
    for round in 0..ROUNDS {
        for (interval, runs) in &mut results {
            runs.push(run(*interval, round));
        }
    }
    let mut lines = Vec::new();
    for (interval, runs) in &results {
        let mean = runs.iter().sum::<f64>() / runs.len() as f64;
        println!(
            "push interval {:>5.1} s: {mean:.3} round trips a message (runs: {runs:.3?})",
            interval.as_secs_f64()
        );
        lines.push(format!(
            "{{\"push_interval_s\": {}, \"round_trips_per_message\": {mean:.4}}}",
            interval.as_secs_f64()
        ));
    }
    if let [(_, every), .., (_, default)] = results.as_slice() {
        let mean = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
        println!(
            "default interval / push after every commit = {:.3}",
            mean(default) / mean(every)
        );
    }
    if let Some(path) = json {
        let path = Path::new(&path);
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let text = format!(
            "{{\"name\": \"riak pushes\", \"agents\": {AGENTS}, \"per_agent_rate\": {PER_AGENT_RATE}, \
             \"runs\": [{}]}}\n",
            lines.join(", ")
        );
        std::fs::write(path, text).expect("write the JSON figures");
    }
}

/// One run at a steady rate; the round trips its pushes made per message.
fn run(interval: Duration, round: usize) -> f64 {
    let dir = std::env::temp_dir().join(format!(
        "clicktochat-riak-bench-{}-{}-{round}",
        std::process::id(),
        interval.as_millis()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    let riak = StandIn::start(&dir.join("data.json"));
    let mut store = RiakStoreConfig::new(
        RiakConfig {
            nodes: vec![riak.node()],
            ..RiakConfig::default()
        },
        b"chats".to_vec(),
    );
    store.push_interval = interval;
    let archive = Archive::open(ArchiveConfig {
        path: dir.join("outbox.redb"),
        store: StoreConfig::Riak(store),
    })
    .expect("open");
    let visitors: Vec<String> = (0..AGENTS).map(|i| format!("visitor{i:04}@c")).collect();
    let agents: Vec<String> = (0..AGENTS).map(|i| format!("agent{i:04}@h")).collect();
    let gap = Duration::from_secs_f64(1.0 / (AGENTS as f64 * PER_AGENT_RATE));
    let start = Instant::now();
    let mut sent = 0usize;
    // (requests, entries pushed) when a round of pushes had just ended.
    let mut between_rounds: Vec<(u64, u64)> = Vec::new();
    while start.elapsed() < RUN {
        let status = archive.status();
        let pushed = status.committed_entries - status.outbox_entries;
        if status.pushes > 0
            && status.pushes.is_multiple_of(AGENTS as u64)
            && between_rounds
                .last()
                .is_none_or(|&(r, _)| r < status.push_requests)
        {
            between_rounds.push((status.push_requests, pushed));
        }
        // Messages due by now, spread evenly over the agents.
        let due = (start.elapsed().as_secs_f64() / gap.as_secs_f64()) as usize;
        while sent < due {
            let a = sent % AGENTS;
            let conversation = Conversation {
                visitor: &visitors[a],
                agent: &agents[a],
                start_us: 1_000_000,
            };
            archive.message(
                &conversation,
                Direction::FromVisitor,
                "Hello, I have a question about my order number 123456789.",
                2_000_000 + sent as i64,
            );
            sent += 1;
        }
        std::thread::sleep(gap.min(Duration::from_millis(5)));
    }
    archive.sync(Duration::from_secs(60)).expect("committed");
    let deadline = Instant::now() + interval + Duration::from_secs(60);
    let status = loop {
        let status = archive.status();
        if status.outbox_entries == 0 || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.outbox_entries, 0, "everything pushed: {status:?}");
    drop(archive);
    drop(riak);
    let _ = std::fs::remove_dir_all(&dir);
    match between_rounds.as_slice() {
        [(r0, p0), .., (r1, p1)] if p1 > p0 => (r1 - r0) as f64 / (p1 - p0) as f64,
        // Rounds back to back, never seen apart: the whole run.
        _ => status.push_requests as f64 / sent as f64,
    }
}
