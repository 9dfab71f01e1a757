//! The desk's hot path in the core, without the VM: a visitor gets an agent
//! (`enter`), its chat ends (`release`), at 10, 1 000 and 100 000 agents
//! online (each with more slots than the run uses, so every pick
//! succeeds), for both routings. The cost should not depend on the number
//! of agents. The visitor gets the agent's name borrowed
//! ([`Desk::enter_ref`]), as the NIF does. `cargo bench -p clicktochat_core --bench desk` (add
//! `-- --quick` for a short run); `make bench-rotation` measures the same
//! pair through the NIF.

use clicktochat_core::{Desk, Entry, Release, Routing};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::hint::black_box;
use std::time::Duration;

const AGENT_COUNTS: [usize; 3] = [10, 1_000, 100_000];

fn desk(routing: Routing, agents: usize) -> Desk {
    let mut desk = Desk::new(u32::MAX, routing, 0);
    for i in 0..agents {
        desk.resource_available(&format!("agent{i}@helpdesk.example.com"), "desk", 0);
    }
    desk
}

fn enter_release(c: &mut Criterion) {
    for (routing, label) in [
        (Routing::RoundRobin, "round_robin"),
        (Routing::LeastBusy, "least_busy"),
    ] {
        let mut group = c.benchmark_group(format!("desk_enter_release_{label}"));
        group.measurement_time(Duration::from_secs(3));
        for agents in AGENT_COUNTS {
            let mut d = desk(routing, agents);
            group.bench_function(format!("{agents}_agents"), |b| {
                b.iter(|| {
                    // As the NIF does: the name borrowed, copied once (here
                    // into a buffer that the NIF's binary stands for).
                    let mut name = [0u8; 64];
                    let len = match d.enter_ref(black_box("visitor"), 0) {
                        Entry::Assigned(agent) => {
                            name[..agent.len()].copy_from_slice(agent.as_bytes());
                            agent.len()
                        }
                        other => panic!("no agent: {other:?}"),
                    };
                    let agent = std::str::from_utf8(&name[..len]).expect("a name");
                    let (release, _) = d.release(black_box(agent), None, 0);
                    assert_eq!(release, Release::Freed);
                })
            });
        }
        group.finish();
    }
    // Setting up 100 000 agents, for scale (not the hot path).
    let mut group = c.benchmark_group("desk_setup");
    group.sample_size(10);
    group.bench_function("100000_agents_online", |b| {
        b.iter_batched(
            || (),
            |()| black_box(desk(Routing::RoundRobin, 100_000)),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, enter_release);
criterion_main!(benches);
