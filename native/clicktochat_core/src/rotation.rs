//! The round robin with capacity of DESIGN.md: agents wait in a FIFO, a new
//! visitor gets the head agent with a free slot and that agent moves to the
//! tail; an agent with no free slot (or no available resource) is out of the
//! FIFO until it has both again, and then rejoins at the tail.
//!
//! Every operation is O(1) amortised. The FIFO uses lazy deletion: an agent
//! leaving the rotation only clears its ticket, and stale entries are dropped
//! when they reach the head (or by a compaction that bounds the FIFO to a
//! constant factor of the agents in it).

use std::collections::{HashMap, HashSet, VecDeque};

#[derive(Debug, Default)]
struct Agent {
    /// Available resources (sessions whose presence is available, not away).
    resources: HashSet<String>,
    /// Visitors currently assigned.
    load: u32,
    /// The ticket of this agent's live FIFO entry, if it is in the rotation.
    ticket: Option<u64>,
}

impl Agent {
    fn is_available(&self) -> bool {
        !self.resources.is_empty()
    }
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
    agents: HashMap<String, Agent>,
    fifo: VecDeque<(String, u64)>,
    /// Agents with a live FIFO entry.
    queued: usize,
    next_ticket: u64,
}

impl Rotation {
    /// An empty rotation; `max_sessions` is clamped to at least 1.
    pub fn new(max_sessions: u32) -> Self {
        Rotation {
            max_sessions: max_sessions.max(1),
            agents: HashMap::new(),
            fifo: VecDeque::new(),
            queued: 0,
            next_ticket: 0,
        }
    }

    pub fn max_sessions(&self) -> u32 {
        self.max_sessions
    }

    /// Changes the capacity. Agents that gain a free slot join the tail in
    /// name order (so the result does not depend on hashing); agents that are
    /// now full leave the rotation. O(agents): a configuration change.
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

    /// The head agent with a free slot, which gets one more visitor and moves
    /// to the tail (or leaves the rotation if that was its last free slot).
    pub fn pick(&mut self) -> Option<String> {
        while let Some((name, ticket)) = self.fifo.pop_front() {
            let Some(agent) = self.agents.get_mut(&name) else {
                continue;
            };
            if agent.ticket != Some(ticket) {
                continue; // stale entry of an agent that left (or rejoined later)
            }
            agent.ticket = None;
            self.queued -= 1;
            agent.load += 1;
            self.sync(&name);
            return Some(name);
        }
        None
    }

    /// One visitor of `agent` has ended: its slot is free again. An agent
    /// that was full rejoins at the tail.
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

    /// The agents in the rotation, head first.
    pub fn queue(&self) -> Vec<String> {
        self.fifo
            .iter()
            .filter(|(name, ticket)| self.agents.get(name).and_then(|a| a.ticket) == Some(*ticket))
            .map(|(name, _)| name.clone())
            .collect()
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

    /// The load of one agent (0 if unknown).
    pub fn load(&self, agent: &str) -> u32 {
        self.agents.get(agent).map_or(0, |a| a.load)
    }

    /// Puts `name` in the FIFO or takes it out so that it is queued exactly
    /// when it is available with a free slot; forgets an agent that is
    /// neither online nor serving anyone, so departed agents cost nothing.
    fn sync(&mut self, name: &str) {
        let Some(agent) = self.agents.get_mut(name) else {
            return;
        };
        let eligible = agent.is_available() && agent.load < self.max_sessions;
        match (eligible, agent.ticket) {
            (true, None) => {
                let ticket = self.next_ticket;
                self.next_ticket += 1;
                agent.ticket = Some(ticket);
                self.queued += 1;
                self.fifo.push_back((name.to_owned(), ticket));
            }
            (false, Some(_)) => {
                agent.ticket = None;
                self.queued -= 1;
                self.compact_if_sparse();
            }
            _ => {}
        }
        if let Some(agent) = self.agents.get(name) {
            if !agent.is_available() && agent.load == 0 {
                self.agents.remove(name);
            }
        }
    }

    /// Drops stale entries once they outnumber live ones, keeping the FIFO
    /// within twice the queued agents: amortised O(1) per departure.
    fn compact_if_sparse(&mut self) {
        if self.fifo.len() > 2 * self.queued + 16 {
            let agents = &self.agents;
            self.fifo
                .retain(|(name, ticket)| agents.get(name).and_then(|a| a.ticket) == Some(*ticket));
        }
    }

    #[cfg(test)]
    fn fifo_len(&self) -> usize {
        self.fifo.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn online(agents: &[&str], max: u32) -> Rotation {
        let mut r = Rotation::new(max);
        for a in agents {
            r.resource_available(a, "desk");
        }
        r
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
        let mut r = Rotation::new(5);
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
        let mut r = Rotation::new(2);
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
        assert!(r.fifo_len() <= 2 * 2 + 16 + 1, "fifo {}", r.fifo_len());
        assert_eq!(r.queue(), ["b", "a"]);
    }
}
