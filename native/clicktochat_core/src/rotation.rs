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
//! Both are one ordered map from a place to the agent, its first entry being
//! the next pick: a place is `(0, ticket)` in round robin (a ticket is a
//! counter taken when the agent joins the tail) and `(load, idle_since)` in
//! least busy (the same counter, taken at the agent's last assignment or
//! when it joined). An agent leaving the rotation is removed at once, so
//! every operation except the O(agents) ones (`set_max_sessions`, `queue`,
//! `loads`) is O(log agents) in the worst case, not just amortised. (A
//! lazily-deleted queue was O(1) amortised, but a pick had to skip every
//! stale entry at the head and a departure could compact the whole queue:
//! over a millisecond with 10,000 agents, on a normal scheduler.)

use std::collections::{BTreeMap, HashMap, HashSet};

/// Who gets the next visitor; chosen when the rotation is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// The seed's round robin: the agent waiting longest in the FIFO.
    RoundRobin,
    /// The fewest active chats; ties to the agent idle longest.
    LeastBusy,
}

/// Where an agent stands in the rotation: the smallest place is picked next.
type Place = (u32, u64);

#[derive(Debug, Default)]
struct Agent {
    /// Available resources (sessions whose presence is available, not away).
    resources: HashSet<String>,
    /// Visitors currently assigned.
    load: u32,
    /// The key of this agent's entry in the rotation, if it is in it.
    place: Option<Place>,
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
    agents: HashMap<String, Agent>,
    /// The agents in the rotation by place: the first is picked next.
    /// Exactly the agents whose `place` is set, under that place.
    places: BTreeMap<Place, String>,
    /// Tickets and idle stamps: it only goes up, so it orders events.
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
            agents: HashMap::new(),
            places: BTreeMap::new(),
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
        let mut names: Vec<String> = self.agents.keys().cloned().collect();
        names.sort();
        for name in names {
            self.sync(&name);
        }
    }

    /// A resource of `agent` is available (logged in, or back from away).
    /// Idempotent: an agent already in the rotation keeps its place.
    pub fn resource_available(&mut self, agent: &str, resource: &str) {
        let entry = self.agents.entry(agent.to_owned()).or_default();
        if !entry.resources.contains(resource) {
            entry.resources.insert(resource.to_owned());
        }
        self.sync(agent);
    }

    /// A resource of `agent` went away, unavailable or offline. Idempotent.
    pub fn resource_unavailable(&mut self, agent: &str, resource: &str) {
        if let Some(entry) = self.agents.get_mut(agent) {
            entry.resources.remove(resource);
            self.sync(agent);
        }
    }

    /// The next agent with a free slot per the routing, which gets one more
    /// visitor (in round robin it moves to the tail; it leaves the rotation
    /// if that was its last free slot).
    pub fn pick(&mut self) -> Option<String> {
        self.pick_first(|_| true)
    }

    /// As [`Rotation::pick`], passing over `agent`: the visitor of an agent
    /// that did not answer goes to someone else. O(log agents): `agent` is
    /// at most one entry to skip.
    pub fn pick_other_than(&mut self, agent: &str) -> Option<String> {
        self.pick_first(|name| name != agent)
    }

    fn pick_first(&mut self, wanted: impl Fn(&str) -> bool) -> Option<String> {
        loop {
            let place = self
                .places
                .iter()
                .find(|(_, name)| wanted(name))
                .map(|(place, _)| *place)?;
            let name = self.places.remove(&place)?;
            // Every entry is live (`sync` removes an agent's entry when it
            // leaves); checked all the same rather than trusted.
            let Some(agent) = self.agents.get_mut(&name) else {
                continue;
            };
            if agent.place != Some(place) {
                continue;
            }
            agent.place = None;
            agent.load += 1;
            agent.idle_since = Some(self.clock);
            self.clock += 1;
            self.sync(&name);
            return Some(name);
        }
    }

    /// One visitor of `agent` has ended: its slot is free again. An agent
    /// that was full rejoins the rotation (in round robin, at the tail).
    pub fn release(&mut self, agent: &str) -> Release {
        match self.agents.get_mut(agent) {
            Some(entry) if entry.load > 0 => {
                entry.load -= 1;
                self.sync(agent);
                Release::Freed
            }
            _ => Release::NotAssigned,
        }
    }

    /// Counts a visitor that was assigned to `agent` before this rotation
    /// existed (rebuilding after a module restart). The agent need not be
    /// online; the load may exceed `max_sessions` if the capacity shrank.
    pub fn restore(&mut self, agent: &str) {
        self.agents.entry(agent.to_owned()).or_default().load += 1;
        self.sync(agent);
    }

    /// The agents in the rotation, the next pick first.
    pub fn queue(&self) -> Vec<String> {
        self.places.values().cloned().collect()
    }

    /// Every known agent (online, or with visitors) and its load, by name.
    pub fn loads(&self) -> Vec<(String, u32)> {
        let mut loads: Vec<(String, u32)> = self
            .agents
            .iter()
            .map(|(name, agent)| (name.clone(), agent.load))
            .collect();
        loads.sort();
        loads
    }

    /// Agents taking visitors and their free slots. O(1).
    pub fn availability(&self) -> Availability {
        self.availability
    }

    /// Whether some agent taking visitors has a free slot. O(1).
    pub fn has_free_slot(&self) -> bool {
        !self.places.is_empty()
    }

    /// The load of one agent (0 if unknown).
    pub fn load(&self, agent: &str) -> u32 {
        self.agents.get(agent).map_or(0, |a| a.load)
    }

    /// Puts `name` in the rotation or takes it out so that it is there
    /// exactly when it is available with a free slot, at the place its
    /// routing gives it; forgets an agent that is neither online nor serving
    /// anyone, so departed agents cost nothing.
    fn sync(&mut self, name: &str) {
        let Some(agent) = self.agents.get_mut(name) else {
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
        let place = if !eligible {
            None
        } else {
            match self.routing {
                // Keeps its place in the FIFO while it stays in it.
                Routing::RoundRobin => Some(agent.place.unwrap_or((0, self.clock))),
                Routing::LeastBusy => {
                    let idle_since = *agent.idle_since.get_or_insert(self.clock);
                    Some((agent.load, idle_since))
                }
            }
        };
        if place != agent.place {
            if let Some(old) = std::mem::replace(&mut agent.place, place) {
                self.places.remove(&old);
            }
            if let Some(new) = place {
                self.places.insert(new, name.to_owned());
            }
        }
        // A ticket or a join stamp may have been taken: never hand it out
        // again, so that every place is unique.
        self.clock += 1;
        if !agent.is_available() && agent.load == 0 {
            self.agents.remove(name);
        }
    }

    #[cfg(test)]
    fn places_len(&self) -> usize {
        self.places.len()
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
