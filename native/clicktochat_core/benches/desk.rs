//! The desk's hot path in the core, without the VM: a visitor gets an agent
//! (`enter`), its chat ends (`release`), at 10, 1 000 and 100 000 agents
//! online (each with more slots than the run uses, so every pick
//! succeeds), for both routings. The cost should not depend on the number
//! of agents. The visitor gets the agent's name borrowed
//! ([`Desk::enter_ref`]), and the release is given either those same bytes
//! (`by_address`: as the NIF is, when the VM hands back the binary that
//! points at them) or a copy (`by_copy`: as after a restart, or from
//! another node; found by hashing). `cargo bench -p clicktochat_core --bench desk` (add
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
        for by_address in [true, false] {
            let how = if by_address { "by_address" } else { "by_copy" };
            let mut group = c.benchmark_group(format!("desk_enter_release_{label}_{how}"));
            group.measurement_time(Duration::from_secs(3));
            for agents in AGENT_COUNTS {
                let mut d = desk(routing, agents);
                group.bench_function(format!("{agents}_agents"), |b| {
                    b.iter(|| {
                        let (address, len) = match d.enter_ref(black_box("visitor"), 0) {
                            Entry::Assigned(agent) => (agent.as_ptr(), agent.len()),
                            other => panic!("no agent: {other:?}"),
                        };
                        // SAFETY: the bytes of a name the desk borrowed stay
                        // where they are, unchanged, for as long as the desk
                        // lives (`Rotation::name`): the NIF relies on it too.
                        let agent = unsafe { std::slice::from_raw_parts(address, len) };
                        // As the NIF's binary copied (into a buffer here).
                        let mut copy = [0u8; 64];
                        let agent = if by_address {
                            agent
                        } else {
                            copy[..len].copy_from_slice(agent);
                            &copy[..len]
                        };
                        let (release, _) = d.release(black_box(agent), None, 0);
                        assert_eq!(release, Release::Freed);
                    })
                });
            }
            group.finish();
        }
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
