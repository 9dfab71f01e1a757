//! The rotation driven by an arbitrary sequence of the NIFs' operations,
//! checked after every step against a naive model (a plain vector FIFO):
//! same queue, same loads, and no pick ever takes an agent past
//! `max_sessions`.
#![no_main]

use arbitrary::Arbitrary;
use clicktochat_core::{Release, Rotation, Routing};
use libfuzzer_sys::fuzz_target;
use std::collections::{BTreeMap, BTreeSet};

/// A few agent names (weird ones included), so that operations collide.
const AGENTS: [&str; 8] = ["a", "b", "c", "d", "agent1@helpdesk", "", "é\u{0}x", "a "];
const RESOURCES: [&str; 3] = ["desk", "phone", ""];

#[derive(Arbitrary, Debug)]
enum Op {
    Available(u8, u8),
    Unavailable(u8, u8),
    Pick,
    Release(u8),
    Restore(u8),
    SetMaxSessions(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    max_sessions: u8,
    ops: Vec<Op>,
}

fn agent(i: u8) -> &'static str {
    AGENTS[usize::from(i) % AGENTS.len()]
}

fn resource(i: u8) -> &'static str {
    RESOURCES[usize::from(i) % RESOURCES.len()]
}

/// The rotation as the README describes it, with no cleverness.
#[derive(Default)]
struct Model {
    max_sessions: u32,
    resources: BTreeMap<String, BTreeSet<String>>,
    loads: BTreeMap<String, u32>,
    fifo: Vec<String>,
}

impl Model {
    fn load(&self, agent: &str) -> u32 {
        self.loads.get(agent).copied().unwrap_or(0)
    }

    fn sync(&mut self, agent: &str) {
        let available = self.resources.get(agent).is_some_and(|r| !r.is_empty());
        let eligible = available && self.load(agent) < self.max_sessions;
        let queued = self.fifo.iter().any(|a| a == agent);
        if eligible && !queued {
            self.fifo.push(agent.to_owned());
        } else if !eligible && queued {
            self.fifo.retain(|a| a != agent);
        }
        if self.load(agent) == 0 {
            self.loads.remove(agent);
        }
        if !available {
            self.resources.remove(agent);
        }
    }

    fn known(&self) -> Vec<(String, u32)> {
        let names: BTreeSet<&String> = self.resources.keys().chain(self.loads.keys()).collect();
        names
            .into_iter()
            .map(|n| (n.clone(), self.load(n)))
            .collect()
    }
}

fuzz_target!(|input: Input| {
    let mut rotation = Rotation::new(u32::from(input.max_sessions), Routing::RoundRobin);
    let mut model = Model {
        max_sessions: u32::from(input.max_sessions).max(1),
        ..Model::default()
    };
    for op in input.ops {
        match op {
            Op::Available(a, r) => {
                rotation.resource_available(agent(a), resource(r));
                model
                    .resources
                    .entry(agent(a).to_owned())
                    .or_default()
                    .insert(resource(r).to_owned());
                model.sync(agent(a));
            }
            Op::Unavailable(a, r) => {
                rotation.resource_unavailable(agent(a), resource(r));
                if let Some(set) = model.resources.get_mut(agent(a)) {
                    set.remove(resource(r));
                }
                model.sync(agent(a));
            }
            Op::Pick => {
                let picked = rotation.pick();
                assert_eq!(picked.as_ref(), model.fifo.first());
                if let Some(name) = picked {
                    model.fifo.remove(0);
                    *model.loads.entry(name.clone()).or_default() += 1;
                    model.sync(&name);
                    assert!(
                        rotation.load(&name) <= rotation.max_sessions(),
                        "{name:?} has {} visitors, max {}",
                        rotation.load(&name),
                        rotation.max_sessions()
                    );
                }
            }
            Op::Release(a) => {
                let had = model.load(agent(a));
                let released = rotation.release(agent(a));
                assert_eq!(
                    released,
                    if had > 0 {
                        Release::Freed
                    } else {
                        Release::NotAssigned
                    }
                );
                if had > 0 {
                    model.loads.insert(agent(a).to_owned(), had - 1);
                    model.sync(agent(a));
                }
            }
            Op::Restore(a) => {
                rotation.restore(agent(a));
                *model.loads.entry(agent(a).to_owned()).or_default() += 1;
                model.sync(agent(a));
            }
            Op::SetMaxSessions(m) => {
                rotation.set_max_sessions(u32::from(m));
                model.max_sessions = u32::from(m).max(1);
                let names: Vec<String> = model.known().into_iter().map(|(n, _)| n).collect();
                for name in names {
                    model.sync(&name);
                }
            }
        }
        assert_eq!(rotation.max_sessions(), model.max_sessions);
        assert_eq!(rotation.queue(), model.fifo);
        assert_eq!(rotation.loads(), model.known());
    }
});
