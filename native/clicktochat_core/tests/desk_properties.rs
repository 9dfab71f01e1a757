//! Property tests of the desk (rotation + waiting line + wait estimate), for
//! both routings: under any sequence of events it agrees exactly with a
//! naive model (the naive rotation, a Vec line and a Vec of every sample,
//! scanned on every call) on every answer and every `Changes`, and the
//! promises of DESIGN.md hold after every step: no free slot while someone
//! waits, no agent past max_sessions, first in first out, a line no longer
//! than max_waiting (but for what the rebuild restored), no visitor twice,
//! and `moved` naming exactly who moved, at its new position.

mod common;

use clicktochat_core::desk::{Assignment, Changes, Desk, Entry, NewPosition, Status};
use clicktochat_core::estimate::{MAX_ESTIMATE_S, MAX_SAMPLES, WINDOW_MS};
use clicktochat_core::{Release, Routing};
use common::naive_rotation::NaiveRotation;
use proptest::prelude::*;
use std::collections::BTreeSet;

/// The desk as the contract states it, with no attempt at efficiency.
struct NaiveDesk {
    rotation: NaiveRotation,
    max_waiting: u64,
    line: Vec<String>,
    /// Every service sample ever taken: (ended at, lasted), in ms.
    samples: Vec<(u64, u64)>,
}

impl NaiveDesk {
    fn new(max_sessions: u32, routing: Routing, max_waiting: u64) -> Self {
        NaiveDesk {
            rotation: NaiveRotation::new(max_sessions, routing),
            max_waiting,
            line: Vec::new(),
            samples: Vec::new(),
        }
    }

    /// Seconds for the visitor at `position`, from the samples that ended
    /// within the window before `now_ms`, the most recent MAX_SAMPLES.
    fn estimate(&self, position: usize, now_ms: u64) -> Option<u64> {
        let recent: Vec<u64> = self
            .samples
            .iter()
            .filter(|(ended, _)| ended + WINDOW_MS > now_ms)
            .map(|(_, lasted)| *lasted)
            .collect();
        let counted = &recent[recent.len().saturating_sub(MAX_SAMPLES)..];
        let availability = self.rotation.availability();
        let slots =
            u128::from(availability.agents_available) * u128::from(self.rotation.max_sessions());
        if counted.is_empty() || slots == 0 {
            return None;
        }
        let total_ms: u128 = counted.iter().map(|&d| u128::from(d)).sum();
        // P * mean / S, in seconds, rounded up.
        let seconds = (position as u128 * total_ms).div_ceil(counted.len() as u128 * slots * 1000);
        Some(seconds.min(u128::from(MAX_ESTIMATE_S)) as u64)
    }

    /// Everyone in line from index `from` on, at their positions now.
    fn positions(&self, from: usize, now_ms: u64) -> Vec<NewPosition> {
        (from..self.line.len())
            .map(|i| NewPosition {
                visitor: self.line[i].clone(),
                position: i as u64 + 1,
                estimate: self.estimate(i + 1, now_ms),
            })
            .collect()
    }

    fn drain(&mut self, now_ms: u64) -> Changes {
        let mut assigned = Vec::new();
        while !self.line.is_empty() {
            let Some(agent) = self.rotation.pick() else {
                break;
            };
            let visitor = self.line.remove(0);
            assigned.push(Assignment { visitor, agent });
        }
        let moved = if assigned.is_empty() {
            Vec::new()
        } else {
            self.positions(0, now_ms)
        };
        Changes { assigned, moved }
    }
}

impl NaiveDesk {
    /// The contract, step by step, over plain Vecs.
    fn apply(&mut self, op: &Op, now_ms: u64) -> Answer {
        match *op {
            Op::Available(a, r) => {
                self.rotation.resource_available(&agent(a), &r.to_string());
                Answer::Changes(self.drain(now_ms))
            }
            Op::Unavailable(a, r) => {
                self.rotation
                    .resource_unavailable(&agent(a), &r.to_string());
                Answer::Nothing
            }
            Op::Enter(v) => Answer::Entry(self.enter(visitor(v), now_ms)),
            Op::Release(a, lasted) => {
                let release = self.rotation.release(&agent(a));
                if release == Release::Freed {
                    self.samples.extend(lasted.map(|ms| (now_ms, ms)));
                }
                Answer::Released(release, self.drain(now_ms))
            }
            Op::Leave(v) => Answer::Changes(match self.index(&visitor(v)) {
                None => Changes::default(),
                Some(index) => {
                    self.line.remove(index);
                    Changes {
                        assigned: vec![],
                        moved: self.positions(index, now_ms),
                    }
                }
            }),
            Op::PassOn(v, a) => Answer::PassOn(if self.index(&visitor(v)).is_some() {
                None
            } else {
                self.rotation.pick_other_than(&agent(a))
            }),
            Op::Restore(a) => {
                self.rotation.restore(&agent(a));
                Answer::Nothing
            }
            Op::Status => {
                let free = !self.rotation.queue().is_empty();
                Answer::Status(Status {
                    availability: self.rotation.availability(),
                    waiting: self.line.len() as u64,
                    estimate: match (self.line.len(), free) {
                        (0, true) => Some(0),
                        (waiting, _) => self.estimate(waiting + 1, now_ms),
                    },
                })
            }
            Op::Wait(_) => Answer::Nothing,
        }
    }

    fn index(&self, visitor: &str) -> Option<usize> {
        self.line.iter().position(|v| v == visitor)
    }

    fn enter(&mut self, visitor: String, now_ms: u64) -> Entry {
        if self.line.is_empty() {
            if let Some(agent) = self.rotation.pick() {
                return Entry::Assigned(agent);
            }
        }
        if self.index(&visitor).is_none() {
            if self.rotation.availability().agents_available == 0 || self.max_waiting == 0 {
                return Entry::NoAgent;
            }
            if self.line.len() as u64 >= self.max_waiting {
                return Entry::LineFull;
            }
            self.line.push(visitor.clone());
        }
        let position = self.index(&visitor).map_or(0, |i| i + 1);
        Entry::Waiting {
            position: position as u64,
            estimate: self.estimate(position, now_ms),
        }
    }

    fn restore(&mut self, step: &Rebuild) {
        match *step {
            Rebuild::Restore(a) => self.rotation.restore(&agent(a)),
            Rebuild::RestoreWaiting(v) => {
                if self.index(&visitor(v)).is_none() {
                    self.line.push(visitor(v));
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Available(u8, u8),
    Unavailable(u8, u8),
    Enter(u8),
    Release(u8, Option<u64>),
    Leave(u8),
    PassOn(u8, u8),
    Restore(u8),
    Status,
    /// Time passes, in ms.
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..4u8, 0..2u8).prop_map(|(a, r)| Op::Available(a, r)),
        2 => (0..4u8, 0..2u8).prop_map(|(a, r)| Op::Unavailable(a, r)),
        8 => (0..16u8).prop_map(Op::Enter),
        5 => (0..4u8, proptest::option::of(0..900_000u64)).prop_map(|(a, d)| Op::Release(a, d)),
        2 => (0..16u8).prop_map(Op::Leave),
        2 => (0..16u8, 0..4u8).prop_map(|(v, a)| Op::PassOn(v, a)),
        1 => (0..4u8).prop_map(Op::Restore),
        1 => Just(Op::Status),
        2 => (0..400_000u64).prop_map(Op::Wait),
    ]
}

/// The rebuild after an owner takeover, before the agents' sessions are
/// replayed: visitors already assigned, visitors already waiting.
#[derive(Debug, Clone)]
enum Rebuild {
    Restore(u8),
    RestoreWaiting(u8),
}

fn rebuild() -> impl Strategy<Value = Rebuild> {
    prop_oneof![
        (0..4u8).prop_map(Rebuild::Restore),
        (0..16u8).prop_map(Rebuild::RestoreWaiting),
    ]
}

fn routing() -> impl Strategy<Value = Routing> {
    prop_oneof![Just(Routing::RoundRobin), Just(Routing::LeastBusy)]
}

fn agent(a: u8) -> String {
    format!("agent{a}@helpdesk")
}

fn visitor(v: u8) -> String {
    format!("visitor{v}")
}

/// Whatever an operation answered.
#[derive(Debug, PartialEq)]
enum Answer {
    Nothing,
    Entry(Entry),
    Changes(Changes),
    Released(Release, Changes),
    PassOn(Option<String>),
    Status(Status),
}

fn apply(desk: &mut Desk, op: &Op, now_ms: u64) -> Answer {
    match *op {
        Op::Available(a, r) => {
            Answer::Changes(desk.resource_available(&agent(a), &r.to_string(), now_ms))
        }
        Op::Unavailable(a, r) => {
            desk.resource_unavailable(&agent(a), &r.to_string());
            Answer::Nothing
        }
        Op::Enter(v) => Answer::Entry(desk.enter(&visitor(v), now_ms)),
        Op::Release(a, d) => {
            let (release, changes) = desk.release(agent(a), d, now_ms);
            Answer::Released(release, changes)
        }
        Op::Leave(v) => Answer::Changes(desk.leave(&visitor(v), now_ms)),
        Op::PassOn(v, a) => Answer::PassOn(desk.pass_on(&visitor(v), &agent(a))),
        Op::Restore(a) => {
            desk.restore(&agent(a));
            Answer::Nothing
        }
        Op::Status => Answer::Status(desk.status(now_ms)),
        Op::Wait(_) => Answer::Nothing,
    }
}

fn restore(desk: &mut Desk, step: &Rebuild) {
    match *step {
        Rebuild::Restore(a) => desk.restore(&agent(a)),
        Rebuild::RestoreWaiting(v) => desk.restore_waiting(&visitor(v)),
    }
}

/// The waiting visitors, head first.
fn names(desk: &mut Desk, now_ms: u64) -> Vec<String> {
    desk.line(now_ms).into_iter().map(|p| p.visitor).collect()
}

/// The `Changes` inside an answer, if any.
fn changes_of(answer: &Answer) -> Option<&Changes> {
    match answer {
        Answer::Changes(changes) | Answer::Released(_, changes) => Some(changes),
        _ => None,
    }
}

/// The agents an answer gave a visitor to.
fn assigned_agents(answer: &Answer) -> Vec<&str> {
    let mut agents: Vec<&str> = changes_of(answer)
        .map(|c| c.assigned.iter().map(|a| a.agent.as_str()).collect())
        .unwrap_or_default();
    match answer {
        Answer::Entry(Entry::Assigned(agent)) | Answer::PassOn(Some(agent)) => agents.push(agent),
        _ => {}
    }
    agents
}

/// `moved` names exactly the visitors waiting both before and after whose
/// position changed, in line order, each at its position in `after`.
fn moved_is_exact(
    before: &[String],
    after: &[String],
    changes: &Changes,
) -> Result<(), TestCaseError> {
    let position_in = |line: &[String], v: &str| line.iter().position(|w| w == v);
    let expected: Vec<(&str, u64)> = after
        .iter()
        .enumerate()
        .filter(|(i, v)| position_in(before, v) != Some(*i))
        .map(|(i, v)| (v.as_str(), i as u64 + 1))
        .collect();
    let reported: Vec<(&str, u64)> = changes
        .moved
        .iter()
        .map(|m| (m.visitor.as_str(), m.position))
        .collect();
    prop_assert_eq!(reported, expected);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn agrees_with_model_and_keeps_its_promises(
        routing in routing(),
        max_sessions in 1u32..4,
        max_waiting in 0u64..5,
        rebuild in proptest::collection::vec(rebuild(), 0..6),
        ops in proptest::collection::vec(op(), 0..250),
    ) {
        let mut desk = Desk::new(max_sessions, routing, max_waiting);
        let mut model = NaiveDesk::new(max_sessions, routing, max_waiting);
        for step in &rebuild {
            restore(&mut desk, step);
            model.restore(step);
        }
        prop_assert_eq!(&names(&mut desk, 0), &model.line);
        let longest = max_waiting.max(names(&mut desk, 0).len() as u64);
        let mut now_ms = 0;
        for op in &ops {
            if let Op::Wait(ms) = op {
                now_ms += ms;
            }
            let before = names(&mut desk, now_ms);
            let got = apply(&mut desk, op, now_ms);
            let want = model.apply(op, now_ms);
            prop_assert_eq!(&got, &want, "after {:?}", op);
            let after = names(&mut desk, now_ms);
            prop_assert_eq!(&after, &model.line);
            prop_assert_eq!(desk.queue(), model.rotation.queue());
            prop_assert_eq!(desk.loads(), model.rotation.loads());
            prop_assert_eq!(desk.availability(), model.rotation.availability());

            // No free slot while someone waits.
            prop_assert!(after.is_empty() || desk.availability().free_slots == 0);
            // Nobody past capacity through a pick.
            for agent in assigned_agents(&got) {
                prop_assert!(desk.load(agent) <= max_sessions, "{} over capacity", agent);
            }
            // No visitor twice; the line within bounds.
            prop_assert_eq!(after.iter().collect::<BTreeSet<_>>().len(), after.len());
            prop_assert!(after.len() as u64 <= longest);
            if let Answer::Entry(Entry::Waiting { position, .. }) = &got {
                prop_assert!(*position <= longest);
            }
            if let Some(changes) = changes_of(&got) {
                // First in, first out: those served are the head, in order.
                let served: Vec<&String> = changes.assigned.iter().map(|a| &a.visitor).collect();
                let head: Vec<&String> = before.iter().take(served.len()).collect();
                prop_assert_eq!(served, head);
                moved_is_exact(&before, &after, changes)?;
            }
        }
    }

    /// With the rotation full, entering visitors queue in arrival order and
    /// come out in that order, whatever the routing.
    #[test]
    fn first_in_first_out(
        routing in routing(),
        agents in 1u8..4,
        visitors in 1u8..16,
    ) {
        let mut desk = Desk::new(1, routing, u64::MAX);
        for a in 0..agents {
            desk.resource_available(&agent(a), "desk", 0);
        }
        let mut served = Vec::new();
        for v in 0..visitors {
            match desk.enter(&visitor(v), 0) {
                Entry::Assigned(_) => served.push(visitor(v)),
                Entry::Waiting { position, .. } => {
                    prop_assert_eq!(position, u64::from(v - agents) + 1);
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
        for round in 0..visitors {
            let (_, changes) = desk.release(agent(round % agents), None, 0);
            served.extend(changes.assigned.into_iter().map(|a| a.visitor));
        }
        prop_assert_eq!(served, (0..visitors).map(visitor).collect::<Vec<_>>());
    }
}
