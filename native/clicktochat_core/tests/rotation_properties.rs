//! Property tests of the rotation: fairness, capacity under any sequence of
//! events, and exact agreement with a naive reference model (a plain Vec
//! scanned on every call) on which agent each pick returns.

use clicktochat_core::{Availability, Release, Rotation};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
enum Op {
    Available(u8, u8),
    Unavailable(u8, u8),
    Pick,
    Release(u8),
    Restore(u8),
    SetMax(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..6u8, 0..2u8).prop_map(|(a, r)| Op::Available(a, r)),
        2 => (0..6u8, 0..2u8).prop_map(|(a, r)| Op::Unavailable(a, r)),
        6 => Just(Op::Pick),
        3 => (0..6u8).prop_map(Op::Release),
        1 => (0..6u8).prop_map(Op::Restore),
        1 => (0..5u32).prop_map(Op::SetMax),
    ]
}

fn name(agent: u8) -> String {
    format!("agent{agent}@helpdesk")
}

/// The rotation as the design states it, with no attempt at efficiency.
#[derive(Default)]
struct Model {
    max: u32,
    resources: BTreeMap<String, BTreeSet<u8>>,
    load: BTreeMap<String, u32>,
    queue: Vec<String>,
}

impl Model {
    fn eligible(&self, agent: &str) -> bool {
        self.resources.get(agent).is_some_and(|r| !r.is_empty())
            && self.load.get(agent).copied().unwrap_or(0) < self.max
    }
    fn sync(&mut self, agent: &str) {
        let queued = self.queue.iter().any(|a| a == agent);
        match (self.eligible(agent), queued) {
            (true, false) => self.queue.push(agent.to_owned()),
            (false, true) => self.queue.retain(|a| a != agent),
            _ => {}
        }
    }
    /// Counted afresh: agents with an available resource, their free slots.
    fn availability(&self) -> Availability {
        let available: Vec<&String> = self
            .resources
            .iter()
            .filter(|(_, r)| !r.is_empty())
            .map(|(agent, _)| agent)
            .collect();
        Availability {
            agents_available: available.len() as u32,
            free_slots: available
                .iter()
                .map(|a| {
                    u64::from(
                        self.max
                            .saturating_sub(self.load.get(*a).copied().unwrap_or(0)),
                    )
                })
                .sum(),
        }
    }
    fn apply(&mut self, op: &Op) -> Option<String> {
        match *op {
            Op::Available(a, r) => {
                self.resources.entry(name(a)).or_default().insert(r);
                self.sync(&name(a));
            }
            Op::Unavailable(a, r) => {
                self.resources.entry(name(a)).or_default().remove(&r);
                self.sync(&name(a));
            }
            Op::Pick => {
                if self.queue.is_empty() {
                    return None;
                }
                let agent = self.queue.remove(0);
                *self.load.entry(agent.clone()).or_default() += 1;
                self.sync(&agent);
                return Some(agent);
            }
            Op::Release(a) => {
                let load = self.load.entry(name(a)).or_default();
                if *load > 0 {
                    *load -= 1;
                    self.sync(&name(a));
                    return Some("freed".into());
                }
                return Some("not_assigned".into());
            }
            Op::Restore(a) => {
                *self.load.entry(name(a)).or_default() += 1;
                self.sync(&name(a));
            }
            Op::SetMax(m) => {
                self.max = m.max(1);
                let agents: BTreeSet<String> = self
                    .resources
                    .keys()
                    .chain(self.load.keys())
                    .cloned()
                    .collect();
                for agent in agents {
                    self.sync(&agent);
                }
            }
        }
        None
    }
}

fn apply(rotation: &mut Rotation, op: &Op) -> Option<String> {
    match *op {
        Op::Available(a, r) => rotation.resource_available(&name(a), &r.to_string()),
        Op::Unavailable(a, r) => rotation.resource_unavailable(&name(a), &r.to_string()),
        Op::Pick => return rotation.pick(),
        Op::Release(a) => {
            return Some(match rotation.release(&name(a)) {
                Release::Freed => "freed".into(),
                Release::NotAssigned => "not_assigned".into(),
            })
        }
        Op::Restore(a) => rotation.restore(&name(a)),
        Op::SetMax(m) => rotation.set_max_sessions(m),
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// K equally free agents, N registrations: each gets N/K rounded down or up.
    #[test]
    fn fairness(k in 1usize..12, n in 0usize..200) {
        let mut rotation = Rotation::new(u32::MAX);
        for a in 0..k {
            rotation.resource_available(&format!("a{a}"), "desk");
        }
        let mut counts = BTreeMap::new();
        for _ in 0..n {
            let agent = rotation.pick().expect("capacity is unlimited");
            *counts.entry(agent).or_insert(0usize) += 1;
        }
        for a in 0..k {
            let got = counts.get(&format!("a{a}")).copied().unwrap_or(0);
            prop_assert!(got == n / k || got == n.div_ceil(k), "agent {a} got {got} of {n}/{k}");
        }
    }

    /// Same picks, releases and queue as the reference model, and no agent
    /// ever gets a visitor beyond max_sessions.
    #[test]
    fn agrees_with_model_and_never_exceeds_capacity(
        max in 1u32..4,
        ops in proptest::collection::vec(op(), 0..300),
    ) {
        let mut rotation = Rotation::new(max);
        let mut model = Model { max, ..Model::default() };
        for op in &ops {
            let got = apply(&mut rotation, op);
            let want = model.apply(op);
            prop_assert_eq!(&got, &want, "after {:?}", op);
            prop_assert_eq!(rotation.queue(), model.queue.clone());
            prop_assert_eq!(rotation.availability(), model.availability());
            if let (Op::Pick, Some(agent)) = (op, &got) {
                prop_assert!(rotation.load(agent) <= rotation.max_sessions());
            }
        }
    }

    /// Joining twice or leaving twice is the same as once.
    #[test]
    fn join_and_leave_are_idempotent(ops in proptest::collection::vec(op(), 0..100), a in 0..6u8) {
        let mut once = Rotation::new(2);
        let mut twice = Rotation::new(2);
        for op in &ops {
            apply(&mut once, op);
            apply(&mut twice, op);
            if let Op::Available(..) | Op::Unavailable(..) = op {
                apply(&mut twice, op);
            }
        }
        once.resource_available(&name(a), "x");
        twice.resource_available(&name(a), "x");
        twice.resource_available(&name(a), "x");
        prop_assert_eq!(once.queue(), twice.queue());
        prop_assert_eq!(once.loads(), twice.loads());
    }
}
