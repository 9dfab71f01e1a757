//! Property tests of the rotation, for both routings: fairness, capacity
//! under any sequence of events, and exact agreement with a naive reference
//! model (tests/common/naive_rotation.rs) on which agent each pick returns.

mod common;

use clicktochat_core::{Release, Rotation, Routing};
use common::naive_rotation::NaiveRotation;
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
enum Op {
    Available(u8, u8),
    Unavailable(u8, u8),
    Pick,
    PickOtherThan(u8),
    Release(u8),
    Restore(u8),
    SetMax(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..6u8, 0..2u8).prop_map(|(a, r)| Op::Available(a, r)),
        2 => (0..6u8, 0..2u8).prop_map(|(a, r)| Op::Unavailable(a, r)),
        6 => Just(Op::Pick),
        2 => (0..6u8).prop_map(Op::PickOtherThan),
        3 => (0..6u8).prop_map(Op::Release),
        1 => (0..6u8).prop_map(Op::Restore),
        1 => (0..5u32).prop_map(Op::SetMax),
    ]
}

fn routing() -> impl Strategy<Value = Routing> {
    prop_oneof![Just(Routing::RoundRobin), Just(Routing::LeastBusy)]
}

fn name(agent: u8) -> String {
    format!("agent{agent}@helpdesk")
}

/// What an operation answered, the same for the rotation and the model.
#[derive(Debug, PartialEq)]
enum Answer {
    Nothing,
    Picked(Option<String>),
    Released(Release),
}

/// The rotation and the model take the same calls, so one `apply` serves
/// both through this trait (its two impls are the same delegation, hence
/// the macro).
trait Rotations {
    fn resource_available(&mut self, agent: &str, resource: &str);
    fn resource_unavailable(&mut self, agent: &str, resource: &str);
    fn pick(&mut self) -> Option<String>;
    fn pick_other_than(&mut self, agent: &str) -> Option<String>;
    fn release(&mut self, agent: &str) -> Release;
    fn restore(&mut self, agent: &str);
    fn set_max_sessions(&mut self, max: u32);
}

macro_rules! rotations_for {
    ($t:ty) => {
        impl Rotations for $t {
            fn resource_available(&mut self, agent: &str, resource: &str) {
                <$t>::resource_available(self, agent, resource)
            }
            fn resource_unavailable(&mut self, agent: &str, resource: &str) {
                <$t>::resource_unavailable(self, agent, resource)
            }
            fn pick(&mut self) -> Option<String> {
                <$t>::pick(self)
            }
            fn pick_other_than(&mut self, agent: &str) -> Option<String> {
                <$t>::pick_other_than(self, agent)
            }
            fn release(&mut self, agent: &str) -> Release {
                <$t>::release(self, agent)
            }
            fn restore(&mut self, agent: &str) {
                <$t>::restore(self, agent)
            }
            fn set_max_sessions(&mut self, max: u32) {
                <$t>::set_max_sessions(self, max)
            }
        }
    };
}
rotations_for!(Rotation);
rotations_for!(NaiveRotation);

fn apply(rotation: &mut impl Rotations, op: &Op) -> Answer {
    match *op {
        Op::Available(a, r) => rotation.resource_available(&name(a), &r.to_string()),
        Op::Unavailable(a, r) => rotation.resource_unavailable(&name(a), &r.to_string()),
        Op::Pick => return Answer::Picked(rotation.pick()),
        Op::PickOtherThan(a) => return Answer::Picked(rotation.pick_other_than(&name(a))),
        Op::Release(a) => return Answer::Released(rotation.release(&name(a))),
        Op::Restore(a) => rotation.restore(&name(a)),
        Op::SetMax(m) => rotation.set_max_sessions(m),
    }
    Answer::Nothing
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// K equally free agents, N registrations: each gets N/K rounded down or up.
    #[test]
    fn fairness(routing in routing(), k in 1usize..12, n in 0usize..200) {
        let mut rotation = Rotation::new(u32::MAX, routing);
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

    /// Least busy: a pick always goes to an eligible agent with the fewest
    /// visitors, whatever came before.
    #[test]
    fn least_busy_picks_a_least_loaded_agent(ops in proptest::collection::vec(op(), 0..200)) {
        let mut rotation = Rotation::new(3, Routing::LeastBusy);
        for op in &ops {
            let before: Vec<u32> = rotation.queue().iter().map(|a| rotation.load(a)).collect();
            if let Answer::Picked(Some(agent)) = apply(&mut rotation, op) {
                let fewest = before.iter().min().copied().unwrap_or(0);
                let got = rotation.load(&agent) - 1;
                let other = matches!(op, Op::PickOtherThan(_));
                prop_assert!(got == fewest || other, "{agent} had {got}, fewest {fewest}");
            }
        }
    }

    /// Same picks, releases, queue, availability and loads as the reference
    /// model, and no agent ever gets a visitor beyond max_sessions.
    #[test]
    fn agrees_with_model_and_never_exceeds_capacity(
        routing in routing(),
        max in 1u32..4,
        ops in proptest::collection::vec(op(), 0..300),
    ) {
        let mut rotation = Rotation::new(max, routing);
        let mut model = NaiveRotation::new(max, routing);
        for op in &ops {
            let got = apply(&mut rotation, op);
            let want = apply(&mut model, op);
            prop_assert_eq!(&got, &want, "after {:?}", op);
            prop_assert_eq!(rotation.queue(), model.queue());
            prop_assert_eq!(rotation.availability(), model.availability());
            prop_assert_eq!(rotation.loads(), model.loads());
            if let Answer::Picked(Some(agent)) = &got {
                prop_assert!(rotation.load(agent) <= rotation.max_sessions());
            }
        }
    }

    /// Joining twice or leaving twice is the same as once.
    #[test]
    fn join_and_leave_are_idempotent(
        routing in routing(),
        ops in proptest::collection::vec(op(), 0..100),
        a in 0..6u8,
    ) {
        let mut once = Rotation::new(2, routing);
        let mut twice = Rotation::new(2, routing);
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
