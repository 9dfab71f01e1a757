//! The helpdesk of one host as visitors meet it: the [`Rotation`] of agents,
//! the [`Line`] of visitors waiting for one, and the [`ServiceWindow`] that
//! estimates their wait (DESIGN.md "Waiting line" and "Routing").
//!
//! The invariant: while the line is non-empty, no agent taking visitors has
//! a free slot. So every event that frees or adds a slot (`release`,
//! `resource_available`) drains the line head first into the free
//! slots, each a pick per the routing, and answers the [`Changes`]: who was
//! assigned, and who moved up. (`restore_waiting`, for the rebuild after an
//! owner takeover, appends without draining and answers nothing: the
//! rebuild's `resource_available` calls that follow drain what they can and
//! report it.)
//!
//! Time is a parameter (monotonic milliseconds, from any origin), so that
//! the logic is tested without clocks: a `u64`, or any [`Now`], which the
//! desk reads only when the call needs the time (an entry into the line, a
//! service sample, a move of the line), so that the hot path (an agent for a
//! visitor, and its release without a sample) reads no clock.

use crate::estimate::ServiceWindow;
use crate::line::Line;
use crate::rotation::{Availability, Release, Rotation, Routing};

/// The time now, in monotonic ms, read by the desk when a call needs it, at
/// most once a call.
pub trait Now {
    fn now_ms(&mut self) -> u64;
}

/// A time given in advance.
impl Now for u64 {
    fn now_ms(&mut self) -> u64 {
        *self
    }
}

/// A [`Now`] read at most once, for a call that may need the time twice.
struct ReadOnce<N> {
    now: N,
    read: Option<u64>,
}

impl<N: Now> ReadOnce<N> {
    fn new(now: N) -> Self {
        ReadOnce { now, read: None }
    }
}

impl<N: Now> Now for ReadOnce<N> {
    fn now_ms(&mut self) -> u64 {
        *self.read.get_or_insert_with(|| self.now.now_ms())
    }
}

/// What [`Desk::enter`] did with a new visitor; the agent as a `String`, or
/// borrowed from the desk ([`Desk::enter_ref`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry<A = String> {
    /// An agent was free: it is this visitor's.
    Assigned(A),
    /// In line at `position` (from 1), with the estimated wait in seconds
    /// (`None` when there is nothing to estimate from).
    Waiting {
        position: u64,
        estimate: Option<u64>,
    },
    /// Every agent is busy and `max_waiting` visitors already wait.
    LineFull,
    /// Nobody is taking visitors, or there is no line (`max_waiting` 0).
    NoAgent,
}

impl<A> Entry<A> {
    /// The same entry, the agent turned by `f`.
    pub fn map<B>(self, f: impl FnOnce(A) -> B) -> Entry<B> {
        match self {
            Entry::Assigned(agent) => Entry::Assigned(f(agent)),
            Entry::Waiting { position, estimate } => Entry::Waiting { position, estimate },
            Entry::LineFull => Entry::LineFull,
            Entry::NoAgent => Entry::NoAgent,
        }
    }
}

/// A waiting visitor leaves the line for an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub visitor: String,
    pub agent: String,
}

/// A visitor still waiting, at a new position, with its new estimate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPosition {
    pub visitor: String,
    pub position: u64,
    pub estimate: Option<u64>,
}

/// What an event did to the line: whom it assigned, in line order, and
/// every visitor still waiting whose position changed, in line order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub assigned: Vec<Assignment>,
    pub moved: Vec<NewPosition>,
}

/// What `GET /clicktochat/status` shows: agents and free slots, the line's
/// length, and the estimate for a newcomer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub availability: Availability,
    pub waiting: u64,
    pub estimate: Option<u64>,
}

#[derive(Debug)]
pub struct Desk {
    rotation: Rotation,
    line: Line,
    window: ServiceWindow,
    /// The most visitors the line takes from `enter`; 0: no line.
    max_waiting: u64,
}

impl Desk {
    /// `max_sessions` is clamped to at least 1 (as the rotation's).
    pub fn new(max_sessions: u32, routing: Routing, max_waiting: u64) -> Self {
        Desk {
            rotation: Rotation::new(max_sessions, routing),
            line: Line::new(),
            window: ServiceWindow::new(),
            max_waiting,
        }
    }

    /// A visitor registers: an agent if one is free and nobody waits before
    /// it, else a place in line if there is a line and room in it. A visitor
    /// already waiting keeps its place.
    pub fn enter(&mut self, visitor: &str, now: impl Now) -> Entry {
        self.enter_ref(visitor, now).map(str::to_owned)
    }

    /// As [`Desk::enter`], the agent's name borrowed from the desk: with
    /// nobody in line, no name is hashed, copied or allocated, and no clock
    /// is read. The name's bytes stay at their address, unchanged, for as
    /// long as the desk lives ([`crate::Rotation::name`]), and
    /// [`Desk::release`] given those very bytes finds the agent by their
    /// address.
    pub fn enter_ref(&mut self, visitor: &str, mut now: impl Now) -> Entry<&str> {
        if self.line.is_empty() {
            if let Some(agent) = self.rotation.pick_id() {
                return Entry::Assigned(self.rotation.name(agent));
            }
        }
        let nobody_taking_visitors = self.rotation.availability().agents_available == 0;
        let position = match self.line.position(visitor) {
            Some(position) => position,
            None if nobody_taking_visitors || self.max_waiting == 0 => return Entry::NoAgent,
            None if self.line.len() as u64 >= self.max_waiting => return Entry::LineFull,
            None => self.line.push(visitor),
        };
        self.window.expire(now.now_ms());
        Entry::Waiting {
            position,
            estimate: self.estimate(position),
        }
    }

    /// One visitor of `agent` has ended, after `duration_ms` if known (a
    /// service sample for the estimate, counted only if the desk counted
    /// that visitor: a stray release must not skew it). The freed slot goes
    /// to the head of the line.
    pub fn release(
        &mut self,
        agent: impl AsRef<[u8]>,
        duration_ms: Option<u64>,
        now: impl Now,
    ) -> (Release, Changes) {
        let mut now = ReadOnce::new(now);
        let release = self.rotation.release(agent);
        if let (Release::Freed, Some(duration_ms)) = (release, duration_ms) {
            self.window.record(now.now_ms(), duration_ms);
        }
        (release, self.drain(&mut now))
    }

    /// A waiting visitor gives up (or its account goes); those behind it
    /// move up. Nothing happens for a visitor not in line.
    pub fn leave(&mut self, visitor: &str, mut now: impl Now) -> Changes {
        let Some(position) = self.line.remove(visitor) else {
            return Changes::default();
        };
        self.window.expire(now.now_ms());
        Changes {
            assigned: Vec::new(),
            moved: self.positions_from(position),
        }
    }

    /// An agent's resource is available: it may bring free slots, which the
    /// line fills.
    pub fn resource_available(
        &mut self,
        agent: &str,
        resource: &str,
        mut now: impl Now,
    ) -> Changes {
        self.rotation.resource_available(agent, resource);
        self.drain(&mut now)
    }

    /// Takes slots away, so it cannot move anyone in line.
    pub fn resource_unavailable(&mut self, agent: &str, resource: &str) {
        self.rotation.resource_unavailable(agent, resource);
    }

    /// Counts a visitor already assigned to `agent` (the rebuild).
    pub fn restore(&mut self, agent: &str) {
        self.rotation.restore(agent);
    }

    /// Puts a visitor that was waiting back in line, at the tail, whatever
    /// `max_waiting` says (the rebuild: it was admitted already). No drain.
    pub fn restore_waiting(&mut self, visitor: &str) {
        self.line.push(visitor);
    }

    /// `from_agent` did not answer `visitor` in time: a slot of another
    /// agent, per the routing, now counts the visitor. `from_agent`'s slot
    /// is released separately (`release`, no sample: no chat took place),
    /// once the caller has handed the visitor over, so that a visitor
    /// ending meanwhile frees exactly the slot it holds in the caller's
    /// records. `None` when no other agent is free, or if the visitor is in
    /// line (it has no agent to be taken from).
    pub fn pass_on(&mut self, visitor: &str, from_agent: &str) -> Option<String> {
        self.pass_on_ref(visitor, from_agent).map(str::to_owned)
    }

    /// As [`Desk::pass_on`], the agent's name borrowed from the desk.
    pub fn pass_on_ref(&mut self, visitor: &str, from_agent: &str) -> Option<&str> {
        if self.line.contains(visitor) {
            return None;
        }
        let agent = self.rotation.pick_other_than_id(from_agent)?;
        Some(self.rotation.name(agent))
    }

    /// Agents taking visitors and their free slots. O(1).
    pub fn availability(&self) -> Availability {
        self.rotation.availability()
    }

    /// The estimate for a newcomer is 0 when it would get an agent at once.
    pub fn status(&mut self, mut now: impl Now) -> Status {
        self.window.expire(now.now_ms());
        let waiting = self.line.len() as u64;
        let estimate = if waiting == 0 && self.rotation.has_free_slot() {
            Some(0)
        } else {
            self.estimate(waiting + 1)
        };
        Status {
            availability: self.availability(),
            waiting,
            estimate,
        }
    }

    /// The waiting visitors, head first, with their positions and
    /// estimates. O(line).
    pub fn line(&mut self, mut now: impl Now) -> Vec<NewPosition> {
        self.window.expire(now.now_ms());
        self.line
            .iter()
            .map(|(position, visitor)| NewPosition {
                visitor: visitor.to_owned(),
                position,
                estimate: self.estimate(position),
            })
            .collect()
    }

    /// The agents with a free slot, the next pick first. O(agents).
    pub fn queue(&self) -> Vec<String> {
        self.rotation.queue()
    }

    /// Every known agent and its load, by name. O(agents).
    pub fn loads(&self) -> Vec<(String, u32)> {
        self.rotation.loads()
    }

    pub fn max_sessions(&self) -> u32 {
        self.rotation.max_sessions()
    }

    /// The load of one agent (0 if unknown).
    pub fn load(&self, agent: &str) -> u32 {
        self.rotation.load(agent)
    }

    /// As of the window's last expiry: callers expire it first.
    fn estimate(&self, position: u64) -> Option<u64> {
        let availability = self.rotation.availability();
        let slots =
            u64::from(availability.agents_available) * u64::from(self.rotation.max_sessions());
        self.window.estimate(position, slots)
    }

    /// Fills free slots from the head of the line; everyone left moved up
    /// if anyone was served.
    fn drain(&mut self, now: &mut impl Now) -> Changes {
        let mut assigned = Vec::new();
        while self.rotation.has_free_slot() {
            let Some(visitor) = self.line.front().map(str::to_owned) else {
                break;
            };
            let Some(agent) = self.rotation.pick() else {
                break;
            };
            self.line.pop_front();
            assigned.push(Assignment { visitor, agent });
        }
        if assigned.is_empty() {
            return Changes::default();
        }
        self.window.expire(now.now_ms());
        Changes {
            assigned,
            moved: self.positions_from(1),
        }
    }

    /// The visitors from `first` on, with their positions and estimates.
    fn positions_from(&self, first: u64) -> Vec<NewPosition> {
        self.line
            .iter()
            .skip_while(|(position, _)| *position < first)
            .map(|(position, visitor)| NewPosition {
                visitor: visitor.to_owned(),
                position,
                estimate: self.estimate(position),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A time that counts how often it is read.
    struct CountedNow<'a>(&'a Cell<u32>, u64);

    impl Now for CountedNow<'_> {
        fn now_ms(&mut self) -> u64 {
            self.0.set(self.0.get() + 1);
            self.1
        }
    }

    fn waiting_names(d: &mut Desk) -> Vec<String> {
        d.line(0).into_iter().map(|p| p.visitor).collect()
    }

    /// Agents online, each with `max` slots, and a line of `max_waiting`.
    fn desk(routing: Routing, agents: &[&str], max: u32, max_waiting: u64) -> Desk {
        let mut desk = Desk::new(max, routing, max_waiting);
        for agent in agents {
            desk.resource_available(agent, "desk", 0);
        }
        desk
    }

    fn enter_all(desk: &mut Desk, visitors: &[&str]) {
        for visitor in visitors {
            desk.enter(visitor, 0);
        }
    }

    fn waiting(position: u64, estimate: Option<u64>) -> Entry {
        Entry::Waiting { position, estimate }
    }

    fn assigned(visitor: &str, agent: &str) -> Assignment {
        Assignment {
            visitor: visitor.into(),
            agent: agent.into(),
        }
    }

    fn moved(visitor: &str, position: u64, estimate: Option<u64>) -> NewPosition {
        NewPosition {
            visitor: visitor.into(),
            position,
            estimate,
        }
    }

    #[test]
    fn the_hot_path_reads_no_clock() {
        let reads = Cell::new(0);
        let now = || CountedNow(&reads, 0);
        let mut d = desk(Routing::RoundRobin, &["a", "b"], 1, 5);
        assert_eq!(d.enter_ref("v1", now()), Entry::Assigned("a"));
        assert_eq!(
            d.release("a", None, now()),
            (Release::Freed, Changes::default())
        );
        assert_eq!(d.pass_on_ref("v1", "a"), Some("b"));
        assert_eq!(reads.get(), 0, "an agent and its release, no sample");
        assert_eq!(d.release("b", Some(1_000), now()).0, Release::Freed);
        assert_eq!(reads.get(), 1, "a sample");
        assert_eq!(d.enter("v2", now()), Entry::Assigned("a".into()));
        assert_eq!(d.enter("v3", now()), Entry::Assigned("b".into()));
        assert_eq!(reads.get(), 1);
        assert_eq!(d.enter_ref("v4", now()), waiting(1, Some(1)).map(|_| ""));
        assert_eq!(reads.get(), 2, "into the line");
        let (_, changes) = d.release("a", Some(1_000), now());
        assert_eq!(changes.assigned, [assigned("v4", "a")]);
        assert_eq!(reads.get(), 3, "a sample and a move, read once");
    }

    #[test]
    fn borrowed_and_owned_answers_agree() {
        let mut d = desk(Routing::LeastBusy, &["a", "b"], 2, 5);
        assert_eq!(d.enter_ref("v1", 0), Entry::Assigned("a"));
        assert_eq!(d.enter("v2", 0), Entry::Assigned("b".to_owned()));
        assert_eq!(d.pass_on_ref("v1", "a"), Some("b"));
        assert_eq!(d.pass_on("v2", "b").as_deref(), Some("a"));
        assert_eq!(d.pass_on_ref("v3", "b"), None, "both full");
        d.release("b", None, 0);
        assert_eq!(d.enter_ref("v4", 0), Entry::Assigned("b"));
        assert_eq!(d.enter_ref("v5", 0), waiting(1, None).map(|_| ""));
        assert_eq!(d.pass_on_ref("v5", "a"), None, "v5 waits");
    }

    #[test]
    fn no_line_by_default_is_no_agent() {
        let mut d = desk(Routing::RoundRobin, &["a"], 1, 0);
        assert_eq!(d.enter("v1", 0), Entry::Assigned("a".into()));
        assert_eq!(d.enter("v2", 0), Entry::NoAgent);
        assert!(d.line(0).is_empty());
    }

    #[test]
    fn nobody_online_is_no_agent_even_with_a_line() {
        let mut d = desk(Routing::RoundRobin, &[], 1, 5);
        assert_eq!(d.enter("v1", 0), Entry::NoAgent);
    }

    #[test]
    fn busy_agents_put_visitors_in_line_until_it_is_full() {
        let mut d = desk(Routing::RoundRobin, &["a"], 1, 2);
        assert_eq!(d.enter("v1", 0), Entry::Assigned("a".into()));
        assert_eq!(d.enter("v2", 0), waiting(1, None));
        assert_eq!(d.enter("v3", 0), waiting(2, None));
        assert_eq!(d.enter("v4", 0), Entry::LineFull);
        assert_eq!(d.enter("v2", 0), waiting(1, None), "not added twice");
        assert_eq!(waiting_names(&mut d), ["v2", "v3"]);
    }

    #[test]
    fn a_release_serves_the_head_and_moves_the_rest_up() {
        let mut d = desk(Routing::RoundRobin, &["a"], 1, 5);
        enter_all(&mut d, &["v1", "v2", "v3", "v4"]);
        // The chat lasted 60 s: one slot frees one chat a minute.
        let (release, changes) = d.release("a", Some(60_000), 1_000);
        assert_eq!(release, Release::Freed);
        assert_eq!(changes.assigned, [assigned("v2", "a")]);
        assert_eq!(
            changes.moved,
            [moved("v3", 1, Some(60)), moved("v4", 2, Some(120))]
        );
        assert_eq!(waiting_names(&mut d), ["v3", "v4"]);
        assert_eq!(d.load("a"), 1);
        let (release, changes) = d.release("b", Some(1), 1_000);
        assert_eq!(
            (release, changes),
            (Release::NotAssigned, Changes::default())
        );
    }

    #[test]
    fn a_stray_release_is_no_sample() {
        let mut d = desk(Routing::RoundRobin, &["a"], 1, 5);
        d.release("a", Some(60_000), 0);
        assert_eq!(d.status(0).estimate, Some(0));
        d.enter("v1", 0);
        assert_eq!(d.status(0).estimate, None);
    }

    #[test]
    fn leaving_moves_only_those_behind() {
        let mut d = desk(Routing::RoundRobin, &["a"], 1, 5);
        enter_all(&mut d, &["v0", "v1", "v2", "v3"]);
        let changes = d.leave("v2", 0);
        assert_eq!(changes.assigned, []);
        assert_eq!(changes.moved, [moved("v3", 2, None)]);
        assert_eq!(d.leave("v2", 0), Changes::default());
        assert_eq!(
            d.leave("v3", 0),
            Changes::default(),
            "the tail moves nobody"
        );
        assert_eq!(waiting_names(&mut d), ["v1"]);
    }

    #[test]
    fn an_agent_coming_online_drains_the_line() {
        let mut d = desk(Routing::RoundRobin, &["a"], 2, 5);
        enter_all(&mut d, &["v1", "v2", "v3", "v4", "v5"]);
        let changes = d.resource_available("b", "desk", 0);
        assert_eq!(changes.assigned, [assigned("v3", "b"), assigned("v4", "b")]);
        assert_eq!(changes.moved, [moved("v5", 1, None)]);
        assert_eq!(d.resource_available("b", "phone", 0), Changes::default());
    }

    #[test]
    fn pass_on_takes_another_agents_slot() {
        let mut d = desk(Routing::RoundRobin, &["a", "b"], 1, 5);
        assert_eq!(d.enter("v1", 0), Entry::Assigned("a".into()));
        assert_eq!(d.pass_on("v1", "a").as_deref(), Some("b"));
        assert_eq!(
            d.loads(),
            [("a".into(), 1), ("b".into(), 1)],
            "a is released apart"
        );
        assert_eq!(
            d.release("a", None, 0),
            (Release::Freed, Changes::default())
        );
        assert_eq!(d.pass_on("v1", "b").as_deref(), Some("a"));
        assert_eq!(
            d.release("b", None, 0),
            (Release::Freed, Changes::default())
        );
        assert_eq!(d.enter("v2", 0), Entry::Assigned("b".into()));
        assert_eq!(d.pass_on("v2", "b"), None, "a is full");
        assert_eq!(d.enter("v3", 0), waiting(1, None));
        assert_eq!(d.pass_on("v3", "a"), None, "v3 has no agent");
        assert_eq!(d.loads(), [("a".into(), 1), ("b".into(), 1)]);
    }

    #[test]
    fn pass_on_never_goes_back_to_the_same_agent() {
        let mut d = desk(Routing::LeastBusy, &["a"], 5, 5);
        d.enter("v1", 0);
        assert_eq!(d.pass_on("v1", "a"), None);
        assert_eq!(d.load("a"), 1);
    }

    #[test]
    fn least_busy_drains_to_the_least_loaded() {
        let mut d = desk(Routing::LeastBusy, &["a", "b"], 2, 5);
        enter_all(&mut d, &["v1", "v2", "v3", "v4", "v5", "v6"]);
        assert_eq!(d.loads(), [("a".into(), 2), ("b".into(), 2)]);
        let (_, changes) = d.release("b", None, 0);
        assert_eq!(changes.assigned, [assigned("v5", "b")]);
        assert_eq!(changes.moved, [moved("v6", 1, None)]);
        let changes = d.resource_available("c", "desk", 0);
        assert_eq!(changes.assigned, [assigned("v6", "c")]);
        assert_eq!(changes.moved, []);
        d.release("a", None, 0);
        // a and c have one chat each; a's last assignment is older.
        assert_eq!(d.enter("v7", 0), Entry::Assigned("a".into()));
        assert_eq!(d.enter("v8", 0), Entry::Assigned("c".into()));
    }

    #[test]
    fn restore_waiting_ignores_max_waiting_and_does_not_drain() {
        let mut d = Desk::new(1, Routing::RoundRobin, 1);
        d.restore("a");
        d.restore_waiting("v1");
        d.restore_waiting("v2");
        d.restore_waiting("v1");
        assert_eq!(waiting_names(&mut d), ["v1", "v2"]);
        let changes = d.resource_available("b", "desk", 0);
        assert_eq!(changes.assigned, [assigned("v1", "b")]);
        assert_eq!(changes.moved, [moved("v2", 1, None)]);
        assert_eq!(d.enter("v3", 0), Entry::LineFull);
    }

    #[test]
    fn status_estimates_for_a_newcomer() {
        let mut d = desk(Routing::RoundRobin, &["a", "b"], 1, 5);
        let status = d.status(0);
        assert_eq!(status.waiting, 0);
        assert_eq!(status.estimate, Some(0), "a newcomer is served at once");
        d.enter("v1", 0);
        d.enter("v2", 0);
        assert_eq!(d.status(0).estimate, None, "no chat has ended yet");
        d.release("a", Some(120_000), 0);
        assert_eq!(d.enter("v3", 0), Entry::Assigned("a".into()));
        // Two slots, one chat each two minutes: one slot frees a minute.
        assert_eq!(d.status(0).estimate, Some(60), "the 1st in line");
        assert_eq!(d.enter("v4", 0), waiting(1, Some(60)));
        assert_eq!(d.status(0).estimate, Some(120), "the 2nd in line");
        assert_eq!(d.status(0).waiting, 1);
        assert_eq!(
            d.status(15 * 60 * 1000).estimate,
            None,
            "the sample expired"
        );
        d.resource_unavailable("a", "desk");
        d.resource_unavailable("b", "desk");
        let status = d.status(0);
        assert_eq!(status.availability, Availability::default());
        assert_eq!(status.estimate, None, "no slots");
    }
}
