//! The rotation as DESIGN.md states it, with no attempt at efficiency: plain
//! maps and a Vec, scanned on every call. The reference the rotation and the
//! desk are checked against, for both routings.

use clicktochat_core::{Availability, Release, Routing};
use std::collections::{BTreeMap, BTreeSet};

pub struct NaiveRotation {
    max: u32,
    routing: Routing,
    resources: BTreeMap<String, BTreeSet<String>>,
    load: BTreeMap<String, u32>,
    /// Round robin: the agents with a free slot, head first.
    fifo: Vec<String>,
    /// Least busy: when each agent was last assigned, or joined the rotation.
    idle_since: BTreeMap<String, u64>,
    clock: u64,
}

impl NaiveRotation {
    pub fn new(max: u32, routing: Routing) -> Self {
        NaiveRotation {
            max: max.max(1),
            routing,
            resources: BTreeMap::new(),
            load: BTreeMap::new(),
            fifo: Vec::new(),
            idle_since: BTreeMap::new(),
            clock: 0,
        }
    }

    pub fn max_sessions(&self) -> u32 {
        self.max
    }

    pub fn load(&self, agent: &str) -> u32 {
        self.load.get(agent).copied().unwrap_or(0)
    }

    fn is_available(&self, agent: &str) -> bool {
        self.resources.get(agent).is_some_and(|r| !r.is_empty())
    }

    fn eligible(&self, agent: &str) -> bool {
        self.is_available(agent) && self.load(agent) < self.max
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn sync(&mut self, agent: &str) {
        let eligible = self.eligible(agent);
        let queued = self.fifo.iter().any(|a| a == agent);
        match (eligible, queued) {
            (true, false) => self.fifo.push(agent.to_owned()),
            (false, true) => self.fifo.retain(|a| a != agent),
            _ => {}
        }
        if eligible && !self.idle_since.contains_key(agent) {
            let now = self.tick();
            self.idle_since.insert(agent.to_owned(), now);
        }
        if !self.is_available(agent) && self.load(agent) == 0 {
            self.resources.remove(agent);
            self.load.remove(agent);
            self.idle_since.remove(agent);
        }
    }

    pub fn resource_available(&mut self, agent: &str, resource: &str) {
        self.resources
            .entry(agent.to_owned())
            .or_default()
            .insert(resource.to_owned());
        self.sync(agent);
    }

    pub fn resource_unavailable(&mut self, agent: &str, resource: &str) {
        if let Some(set) = self.resources.get_mut(agent) {
            set.remove(resource);
        }
        self.sync(agent);
    }

    /// The agents in the order they would be picked.
    pub fn queue(&self) -> Vec<String> {
        match self.routing {
            Routing::RoundRobin => self.fifo.clone(),
            Routing::LeastBusy => {
                let mut eligible: Vec<(u32, u64, String)> = self
                    .resources
                    .keys()
                    .filter(|a| self.eligible(a))
                    .map(|a| (self.load(a), self.idle_since[a], a.clone()))
                    .collect();
                eligible.sort();
                eligible.into_iter().map(|(_, _, a)| a).collect()
            }
        }
    }

    pub fn pick(&mut self) -> Option<String> {
        let agent = self.queue().into_iter().next()?;
        Some(self.assign(agent))
    }

    pub fn pick_other_than(&mut self, excluded: &str) -> Option<String> {
        let agent = self.queue().into_iter().find(|a| a != excluded)?;
        Some(self.assign(agent))
    }

    /// One more visitor for `agent`; in round robin it goes to the tail.
    fn assign(&mut self, agent: String) -> String {
        self.fifo.retain(|a| *a != agent);
        *self.load.entry(agent.clone()).or_default() += 1;
        let now = self.tick();
        self.idle_since.insert(agent.clone(), now);
        self.sync(&agent);
        agent
    }

    pub fn release(&mut self, agent: &str) -> Release {
        if self.load(agent) == 0 {
            return Release::NotAssigned;
        }
        *self.load.entry(agent.to_owned()).or_default() -= 1;
        self.sync(agent);
        Release::Freed
    }

    pub fn restore(&mut self, agent: &str) {
        *self.load.entry(agent.to_owned()).or_default() += 1;
        self.sync(agent);
    }

    pub fn set_max_sessions(&mut self, max: u32) {
        self.max = max.max(1);
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

    /// Counted afresh: agents with an available resource, their free slots.
    pub fn availability(&self) -> Availability {
        let available: Vec<&String> = self
            .resources
            .keys()
            .filter(|a| self.is_available(a))
            .collect();
        Availability {
            agents_available: available.len() as u32,
            free_slots: available
                .iter()
                .map(|a| u64::from(self.max.saturating_sub(self.load(a))))
                .sum(),
        }
    }

    /// Every agent online or serving someone, with its load, by name.
    pub fn loads(&self) -> Vec<(String, u32)> {
        let names: BTreeSet<&String> = self.resources.keys().chain(self.load.keys()).collect();
        names
            .into_iter()
            .map(|a| (a.clone(), self.load(a)))
            .collect()
    }
}
