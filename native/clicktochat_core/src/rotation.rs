//! The agents of one helpdesk host, their visitor counts, and who gets the
//! next visitor, by one of two routings (DESIGN.md "Routing"):
//!
//! - round robin with capacity: agents wait in a FIFO, a new visitor gets the
//!   head agent with a free slot and that agent moves to the tail; an agent
//!   with no free slot (or no available resource) is out of the FIFO until it
//!   has both again, and then rejoins at the tail;
//! - least busy: the agent with the fewest visitors gets the next one; ties go
//!   to the agent idle longest, the one whose last assignment is oldest (an
//!   agent never assigned counts from when it joined the rotation, so the
//!   first to come online goes first).
//!
//! Agents are interned: each known agent has a small integer id (see
//! [`crate::interner`]), its state is an entry of a `Vec` indexed by that id,
//! and a name is looked up once per call that brings one (`release`,
//! presence changes, `restore`), by a fast seeded hash, or, for the very
//! bytes [`Rotation::name`] borrowed (a release handed back the name its
//! pick answered), by their address. A pick looks no name up: it answers an
//! [`AgentId`], whose name [`Rotation::name`] borrows.
//!
//! Who is picked next:
//!
//! - round robin: an index-linked list of ids (the FIFO), so a pick (head to
//!   tail), a release that brings a full agent back, a departure, are O(1)
//!   in the worst case, whatever the number of agents;
//! - least busy: the ids ranked by `(load, idle_since)` (`idle_since` is a
//!   counter taken at the agent's last assignment or when it joined), a
//!   bucket per load sorted by `idle_since` ([`crate::ranking`]): a pick and
//!   the release that follows it are O(1); a release out of order is a
//!   binary search and a move of at most half a bucket.
//!
//! An agent leaving the rotation is removed at once, so every operation but
//! the O(agents) ones (`set_max_sessions`, `queue`, `loads`) has the bounds
//! above in the worst case, not just amortised. (A lazily-deleted queue was
//! O(1) amortised, but a pick had to skip every stale entry at the head and a
//! departure could compact the whole queue: over a millisecond with 10,000
//! agents, on a normal scheduler.)

use crate::id_list::IdList;
use crate::interner::Interner;
use crate::ranking::{Rank, Ranking};

/// Who gets the next visitor; chosen when the rotation is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// The seed's round robin: the agent waiting longest in the FIFO.
    RoundRobin,
    /// The fewest active chats; ties to the agent idle longest.
    LeastBusy,
}

/// An agent of a rotation, as a pick answers it. Valid until the next call
/// that may forget the agent (it is forgotten once it is offline with no
/// visitor); its name is [`Rotation::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AgentId(u32);

/// One cache line: round robin walks through the agents in turn.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Agent {
    /// Available resources (sessions whose presence is available, not away).
    /// A handful at most: a `Vec`, scanned.
    resources: Vec<Box<str>>,
    /// Visitors currently assigned.
    load: u32,
    /// Least busy: the load this agent is ranked under in `ranked`, if it
    /// is in it (its rank is that and its `idle_since`).
    ranked_at: Option<u32>,
    /// When (on the rotation's counter) it was last assigned a visitor, or
    /// joined the rotation if it never was: least busy's tie-break.
    idle_since: Option<u64>,
    /// What this agent adds to the rotation's `availability` totals, as of
    /// its last `sync`: taking visitors, and its free slots.
    counted: (bool, u32),
}

impl Agent {
    fn is_available(&self) -> bool {
        !self.resources.is_empty()
    }
}

/// What a public page may know before the click: how many agents are taking
/// visitors (available presence, whether or not they have a free slot) and
/// how many free slots they have between them. No names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Availability {
    pub agents_available: u32,
    pub free_slots: u64,
}

/// What [`Rotation::release`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// A slot of the agent was freed.
    Freed,
    /// The agent had no visitor assigned: nothing changed.
    NotAssigned,
}

/// The agents of one helpdesk host and their visitor counts.
#[derive(Debug)]
pub struct Rotation {
    max_sessions: u32,
    routing: Routing,
    /// Every known agent (online, or with visitors): name <-> id.
    names: Interner,
    /// By id; the entry of an id not in `names` is the default.
    agents: Vec<Agent>,
    /// Round robin: the agents in the rotation, the next pick first.
    fifo: IdList,
    /// Least busy: the agents in the rotation by rank, the next pick first.
    /// Exactly the agents whose `rank` is set, under that rank.
    ranked: Ranking,
    /// Idle stamps: it only goes up, so it orders events.
    clock: u64,
    /// The sum of every agent's `counted`, kept by `sync` so that reading it
    /// is O(1) (`GET /clicktochat/status` may be called by every page view).
    availability: Availability,
}

impl Rotation {
    /// An empty rotation; `max_sessions` is clamped to at least 1.
    pub fn new(max_sessions: u32, routing: Routing) -> Self {
        Rotation {
            max_sessions: max_sessions.max(1),
            routing,
            names: Interner::new(),
            agents: Vec::new(),
            fifo: IdList::new(),
            ranked: Ranking::new(),
            clock: 0,
            availability: Availability::default(),
        }
    }

    pub fn max_sessions(&self) -> u32 {
        self.max_sessions
    }

    pub fn routing(&self) -> Routing {
        self.routing
    }

    /// Changes the capacity. Agents that gain a free slot join the rotation
    /// in name order (so the result does not depend on hashing); agents that
    /// are now full leave it. O(agents): a configuration change.
    pub fn set_max_sessions(&mut self, max_sessions: u32) {
        self.max_sessions = max_sessions.max(1);
        let mut by_name: Vec<(&str, u32)> = self.names.iter().map(|(id, n)| (n, id)).collect();
        by_name.sort_unstable();
        let ids: Vec<u32> = by_name.into_iter().map(|(_, id)| id).collect();
        for id in ids {
            self.sync(id);
        }
    }

    /// A resource of `agent` is available (logged in, or back from away).
    /// Idempotent: an agent already in the rotation keeps its place.
    pub fn resource_available(&mut self, agent: &str, resource: &str) {
        let Some(id) = self.intern(agent) else {
            return;
        };
        if let Some(entry) = self.agents.get_mut(id as usize) {
            if !entry.resources.iter().any(|r| **r == *resource) {
                entry.resources.push(resource.into());
            }
        }
        self.sync(id);
    }

    /// A resource of `agent` went away, unavailable or offline. Idempotent.
    pub fn resource_unavailable(&mut self, agent: &str, resource: &str) {
        let Some(id) = self.names.find(agent.as_bytes()) else {
            return;
        };
        if let Some(entry) = self.agents.get_mut(id as usize) {
            if let Some(at) = entry.resources.iter().position(|r| **r == *resource) {
                entry.resources.swap_remove(at);
            }
        }
        self.sync(id);
    }

    /// The next agent with a free slot per the routing, which gets one more
    /// visitor (in round robin it moves to the tail; it leaves the rotation
    /// if that was its last free slot).
    pub fn pick(&mut self) -> Option<String> {
        self.pick_id().map(|id| self.name(id).to_owned())
    }

    /// As [`Rotation::pick`], answering the agent's id: no name is looked
    /// up or copied.
    pub fn pick_id(&mut self) -> Option<AgentId> {
        self.pick_first(None)
    }

    /// As [`Rotation::pick`], passing over `agent`: the visitor of an agent
    /// that did not answer goes to someone else. `agent` is at most one
    /// entry to skip.
    pub fn pick_other_than(&mut self, agent: &str) -> Option<String> {
        self.pick_other_than_id(agent)
            .map(|id| self.name(id).to_owned())
    }

    /// As [`Rotation::pick_other_than`], answering the agent's id.
    pub fn pick_other_than_id(&mut self, agent: &str) -> Option<AgentId> {
        let excluded = self.names.find(agent.as_bytes());
        self.pick_first(excluded)
    }

    /// The name of an agent a pick answered ("" if it was forgotten since).
    /// Its bytes stay at this address, unchanged, for as long as the
    /// rotation lives (see [`crate::interner`]).
    pub fn name(&self, agent: AgentId) -> &str {
        self.names.name(agent.0)
    }

    fn pick_first(&mut self, excluded: Option<u32>) -> Option<AgentId> {
        let id = match self.routing {
            Routing::RoundRobin => {
                let head = self.fifo.front()?;
                let id = if Some(head) == excluded {
                    self.fifo.next(head)?
                } else {
                    head
                };
                self.fifo.remove(id);
                id
            }
            Routing::LeastBusy => self.ranked.pop_first_other_than(excluded)?,
        };
        // Every id in the rotation has an entry; checked all the same
        // rather than trusted.
        let agent = self.agents.get_mut(id as usize)?;
        // Out of `ranked` (least busy) if it was in it: `sync` ranks it anew.
        agent.ranked_at = None;
        agent.load += 1;
        agent.idle_since = Some(self.clock);
        self.clock += 1;
        self.sync(id);
        Some(AgentId(id))
    }

    /// One visitor of `agent` has ended: its slot is free again. An agent
    /// that was full rejoins the rotation (in round robin, at the tail).
    /// `agent` as bytes: the name [`Rotation::name`] borrowed is found by
    /// its address, any other by its hash (bytes that are not UTF-8 are
    /// no agent's).
    pub fn release(&mut self, agent: impl AsRef<[u8]>) -> Release {
        let Some(id) = self.names.find(agent.as_ref()) else {
            return Release::NotAssigned;
        };
        match self.agents.get_mut(id as usize) {
            Some(entry) if entry.load > 0 => {
                entry.load -= 1;
                self.sync(id);
                Release::Freed
            }
            _ => Release::NotAssigned,
        }
    }

    /// Counts a visitor that was assigned to `agent` before this rotation
    /// existed (rebuilding after a module restart). The agent need not be
    /// online; the load may exceed `max_sessions` if the capacity shrank.
    pub fn restore(&mut self, agent: &str) {
        let Some(id) = self.intern(agent) else {
            return;
        };
        if let Some(entry) = self.agents.get_mut(id as usize) {
            entry.load = entry.load.saturating_add(1);
        }
        self.sync(id);
    }

    /// The agents in the rotation, the next pick first.
    pub fn queue(&self) -> Vec<String> {
        let name = |id| self.names.name(id).to_owned();
        match self.routing {
            Routing::RoundRobin => self.fifo.iter().map(name).collect(),
            Routing::LeastBusy => self.ranked.iter().map(|(_, id)| name(id)).collect(),
        }
    }

    /// Every known agent (online, or with visitors) and its load, by name.
    pub fn loads(&self) -> Vec<(String, u32)> {
        let mut loads: Vec<(String, u32)> = self
            .names
            .iter()
            .map(|(id, name)| {
                let load = self.agents.get(id as usize).map_or(0, |a| a.load);
                (name.to_owned(), load)
            })
            .collect();
        loads.sort_unstable();
        loads
    }

    /// Agents taking visitors and their free slots. O(1).
    pub fn availability(&self) -> Availability {
        self.availability
    }

    /// Whether some agent taking visitors has a free slot. O(1).
    pub fn has_free_slot(&self) -> bool {
        match self.routing {
            Routing::RoundRobin => !self.fifo.is_empty(),
            Routing::LeastBusy => !self.ranked.is_empty(),
        }
    }

    /// The load of one agent (0 if unknown).
    pub fn load(&self, agent: &str) -> u32 {
        self.names
            .find(agent.as_bytes())
            .and_then(|id| self.agents.get(id as usize))
            .map_or(0, |a| a.load)
    }

    /// The id of `name`, made if it is new (with its entry). `None` only
    /// past [`crate::interner::MAX_NAMES`] agents.
    fn intern(&mut self, name: &str) -> Option<u32> {
        let id = self.names.intern(name)?;
        if self.agents.len() <= id as usize {
            self.agents.resize_with(id as usize + 1, Agent::default);
        }
        Some(id)
    }

    /// Puts agent `id` in the rotation or takes it out so that it is there
    /// exactly when it is available with a free slot, at the place its
    /// routing gives it; forgets an agent that is neither online nor serving
    /// anyone, so departed agents cost nothing but their stored name (kept
    /// for their return, see [`crate::interner`]).
    fn sync(&mut self, id: u32) {
        let Some(agent) = self.agents.get_mut(id as usize) else {
            return;
        };
        let available = agent.is_available();
        let counted = (
            available,
            if available {
                self.max_sessions.saturating_sub(agent.load)
            } else {
                0
            },
        );
        let (was_available, was_free) = std::mem::replace(&mut agent.counted, counted);
        self.availability.agents_available =
            self.availability.agents_available + u32::from(available) - u32::from(was_available);
        self.availability.free_slots =
            self.availability.free_slots + u64::from(counted.1) - u64::from(was_free);
        let eligible = available && agent.load < self.max_sessions;
        match self.routing {
            // Keeps its place in the FIFO while it stays in it.
            Routing::RoundRobin if eligible => self.fifo.push_back(id),
            Routing::RoundRobin => {
                self.fifo.remove(id);
            }
            Routing::LeastBusy => {
                let old: Option<Rank> = agent.ranked_at.zip(agent.idle_since);
                let rank = if eligible {
                    Some((agent.load, *agent.idle_since.get_or_insert(self.clock)))
                } else {
                    None
                };
                if rank != old {
                    if let Some(old) = old {
                        self.ranked.remove(old);
                    }
                    if let Some(new) = rank {
                        self.ranked.insert(new, id);
                    }
                    agent.ranked_at = rank.map(|(load, _)| load);
                }
            }
        }
        // A join stamp may have been taken: never hand it out again, so
        // that every rank is unique.
        self.clock += 1;
        if !agent.is_available() && agent.load == 0 {
            *agent = Agent::default();
            self.names.remove(id);
        }
    }

    #[cfg(test)]
    fn places_len(&self) -> usize {
        self.fifo.len() + self.ranked.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn online(agents: &[&str], max: u32) -> Rotation {
        online_with(Routing::RoundRobin, agents, max)
    }

    fn online_with(routing: Routing, agents: &[&str], max: u32) -> Rotation {
        let mut r = Rotation::new(max, routing);
        for a in agents {
            r.resource_available(a, "desk");
        }
        r
    }

    #[test]
    fn an_agent_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Agent>(), 64);
    }

    #[test]
    fn least_busy_takes_fewest_chats_and_first_online_on_ties() {
        let mut r = online_with(Routing::LeastBusy, &["c", "a", "b"], 5);
        assert_eq!(r.routing(), Routing::LeastBusy);
        let picks: Vec<_> = (0..4).filter_map(|_| r.pick()).collect();
        assert_eq!(picks, ["c", "a", "b", "c"]);
        assert_eq!(r.queue(), ["a", "b", "c"], "the next pick first");
        assert_eq!(r.release("b"), Release::Freed);
        assert_eq!(r.pick().as_deref(), Some("b"), "b has the fewest chats");
    }

    #[test]
    fn least_busy_ties_go_to_the_oldest_assignment() {
        let mut r = online_with(Routing::LeastBusy, &["a", "b"], 5);
        assert_eq!(r.pick().as_deref(), Some("a"));
        assert_eq!(r.pick().as_deref(), Some("b"));
        // Released in the other order: a's last assignment is still older.
        r.release("b");
        r.release("a");
        assert_eq!(r.pick().as_deref(), Some("a"));
    }

    #[test]
    fn least_busy_respects_capacity_and_presence() {
        let mut r = online_with(Routing::LeastBusy, &["a", "b"], 1);
        assert_eq!(r.pick().as_deref(), Some("a"));
        assert_eq!(r.pick().as_deref(), Some("b"));
        assert_eq!(r.pick(), None);
        r.resource_unavailable("a", "desk");
        r.release("a");
        assert_eq!(r.pick(), None, "a is offline");
        assert!(
            r.loads() == [("b".to_owned(), 1)],
            "idle offline a is forgotten"
        );
        r.resource_available("a", "desk");
        assert_eq!(r.pick().as_deref(), Some("a"));
    }

    #[test]
    fn least_busy_rejoining_agent_counts_from_its_return() {
        let mut r = online_with(Routing::LeastBusy, &["a", "b"], 5);
        r.resource_unavailable("a", "desk");
        r.resource_available("a", "desk");
        assert_eq!(r.queue(), ["b", "a"]);
    }

    #[test]
    fn pick_other_than_passes_over_one_agent() {
        for routing in [Routing::RoundRobin, Routing::LeastBusy] {
            let mut r = online_with(routing, &["a", "b", "c"], 1);
            assert_eq!(r.pick_other_than("a").as_deref(), Some("b"));
            assert_eq!(r.pick_other_than("z").as_deref(), Some("a"));
            assert_eq!(r.pick_other_than("c"), None, "only c is free");
            assert_eq!(r.pick_other_than("a").as_deref(), Some("c"));
        }
        let mut r = online(&["a", "b", "c"], 5);
        r.pick_other_than("a");
        assert_eq!(r.queue(), ["a", "c", "b"], "a keeps its place");
    }

    #[test]
    fn has_free_slot_follows_the_rotation() {
        let mut r = online(&["a"], 1);
        assert!(r.has_free_slot());
        r.pick();
        assert!(!r.has_free_slot());
        r.release("a");
        assert!(r.has_free_slot());
    }

    #[test]
    fn seed_example_round_robin() {
        let mut r = online(&["user1", "user2", "user3"], 5);
        assert_eq!(r.pick().as_deref(), Some("user1"));
        assert_eq!(r.queue(), ["user2", "user3", "user1"]);
        assert_eq!(r.pick().as_deref(), Some("user2"));
        assert_eq!(r.pick().as_deref(), Some("user3"));
        assert_eq!(r.pick().as_deref(), Some("user1"));
    }

    #[test]
    fn full_agent_leaves_and_rejoins_at_tail_on_release() {
        let mut r = online(&["a", "b"], 1);
        assert_eq!(r.pick().as_deref(), Some("a"));
        assert_eq!(r.queue(), ["b"]);
        assert_eq!(r.pick().as_deref(), Some("b"));
        assert_eq!(r.pick(), None);
        assert_eq!(r.release("b"), Release::Freed);
        assert_eq!(r.release("a"), Release::Freed);
        assert_eq!(r.queue(), ["b", "a"]);
        assert_eq!(r.release("a"), Release::NotAssigned);
    }

    #[test]
    fn away_agent_is_skipped_and_comes_back_at_tail() {
        let mut r = online(&["a", "b", "c"], 5);
        r.resource_unavailable("a", "desk");
        assert_eq!(r.queue(), ["b", "c"]);
        assert_eq!(r.pick().as_deref(), Some("b"));
        r.resource_available("a", "desk");
        assert_eq!(r.queue(), ["c", "b", "a"]);
    }

    #[test]
    fn several_resources_count_as_one_agent() {
        let mut r = Rotation::new(5, Routing::RoundRobin);
        r.resource_available("a", "phone");
        r.resource_available("a", "laptop");
        r.resource_available("a", "phone");
        assert_eq!(r.queue(), ["a"]);
        r.resource_unavailable("a", "phone");
        assert_eq!(r.queue(), ["a"]);
        r.resource_unavailable("a", "laptop");
        assert!(r.queue().is_empty());
        assert!(r.loads().is_empty(), "an idle offline agent is forgotten");
    }

    #[test]
    fn offline_agent_keeps_its_load_until_released() {
        let mut r = online(&["a"], 2);
        r.pick();
        r.resource_unavailable("a", "desk");
        assert_eq!(r.loads(), [("a".to_owned(), 1)]);
        assert_eq!(r.pick(), None);
        assert_eq!(r.release("a"), Release::Freed);
        assert!(r.loads().is_empty());
    }

    #[test]
    fn restore_counts_visitors_of_offline_and_online_agents() {
        let mut r = Rotation::new(2, Routing::RoundRobin);
        r.restore("a");
        r.restore("a");
        r.resource_available("a", "desk");
        assert!(r.queue().is_empty(), "a is full");
        r.resource_available("b", "desk");
        r.restore("b");
        assert_eq!(r.queue(), ["b"]);
        assert_eq!(r.load("b"), 1);
    }

    #[test]
    fn set_max_sessions_requeues_in_name_order() {
        let mut r = online(&["b", "a"], 1);
        r.pick();
        r.pick();
        assert_eq!(r.pick(), None);
        r.set_max_sessions(2);
        assert_eq!(r.queue(), ["a", "b"]);
        r.set_max_sessions(0);
        assert_eq!(r.max_sessions(), 1);
        assert!(r.queue().is_empty());
    }

    #[test]
    fn flapping_agents_do_not_grow_the_fifo() {
        let mut r = online(&["a", "b"], 5);
        for _ in 0..10_000 {
            r.resource_unavailable("a", "desk");
            r.resource_available("a", "desk");
        }
        assert_eq!(r.places_len(), 2);
        assert_eq!(r.queue(), ["b", "a"]);
    }

    /// The FIFO holds exactly the agents in the rotation: a departure
    /// removes its entry, so no pick has stale entries to skip (with a
    /// lazily-deleted queue, a pick after the first half of 10,000 agents
    /// went away and came back skipped 5,000 entries, and a departure could
    /// compact 20,000: over a millisecond, hostile_inputs bench).
    #[test]
    fn departures_leave_no_stale_entries() {
        let names: Vec<String> = (0..1000).map(|i| format!("agent{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut r = online(&names, 2);
        for name in &names[..500] {
            r.resource_unavailable(name, "desk");
        }
        assert_eq!(r.places_len(), 500);
        for name in &names[..500] {
            r.resource_available(name, "desk");
        }
        assert_eq!(r.places_len(), 1000);
        assert_eq!(r.pick().as_deref(), Some("agent500"));
        for _ in 0..1999 {
            r.pick();
        }
        assert_eq!(r.places_len(), 0, "every agent is full");
        assert_eq!(r.pick(), None);
        r.release("agent7");
        assert_eq!(r.queue(), ["agent7"]);
        assert_eq!(r.places_len(), 1);
    }
}
