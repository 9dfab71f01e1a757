//! The waiting line of DESIGN.md "Waiting line": visitors who found every
//! agent busy, first come first served, positions counted from 1.
//!
//! An ordered map from ticket (a counter taken on joining the tail) to
//! visitor, and the reverse map, so that any visitor can leave in O(log n)
//! without a scan and the length is O(1). A position is a visitor's rank,
//! O(position) to count: every caller that needs positions (the notices of
//! who moved) walks that part of the line anyway.

use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Default)]
pub struct Line {
    by_ticket: BTreeMap<u64, String>,
    ticket_of: HashMap<String, u64>,
    next_ticket: u64,
}

impl Line {
    pub fn new() -> Self {
        Line::default()
    }

    /// How many visitors wait. O(1).
    pub fn len(&self) -> usize {
        self.by_ticket.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ticket.is_empty()
    }

    pub fn contains(&self, visitor: &str) -> bool {
        self.ticket_of.contains_key(visitor)
    }

    /// Puts `visitor` at the tail and answers its position; a visitor
    /// already waiting keeps its place (and its position is answered).
    pub fn push(&mut self, visitor: &str) -> u64 {
        if let Some(position) = self.position(visitor) {
            return position;
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.by_ticket.insert(ticket, visitor.to_owned());
        self.ticket_of.insert(visitor.to_owned(), ticket);
        self.len() as u64
    }

    /// The visitor at the head, who is served next.
    pub fn front(&self) -> Option<&str> {
        self.by_ticket.values().next().map(String::as_str)
    }

    pub fn pop_front(&mut self) -> Option<String> {
        let (_, visitor) = self.by_ticket.pop_first()?;
        self.ticket_of.remove(&visitor);
        Some(visitor)
    }

    /// Takes `visitor` out of the line wherever it stands; answers the
    /// position it had, or `None` if it was not waiting.
    pub fn remove(&mut self, visitor: &str) -> Option<u64> {
        let position = self.position(visitor)?;
        let ticket = self.ticket_of.remove(visitor)?;
        self.by_ticket.remove(&ticket);
        Some(position)
    }

    /// Where `visitor` stands, from 1 at the head. O(position).
    pub fn position(&self, visitor: &str) -> Option<u64> {
        let ticket = *self.ticket_of.get(visitor)?;
        Some(self.by_ticket.range(..ticket).count() as u64 + 1)
    }

    /// The visitors, head first, each with its position.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &str)> {
        (1..).zip(self.by_ticket.values().map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visitors(line: &Line) -> Vec<(u64, &str)> {
        line.iter().collect()
    }

    #[test]
    fn first_in_first_out_with_positions_from_one() {
        let mut line = Line::new();
        assert!(line.is_empty());
        assert_eq!(line.push("a"), 1);
        assert_eq!(line.push("b"), 2);
        assert_eq!(line.push("c"), 3);
        assert_eq!(line.len(), 3);
        assert_eq!(line.front(), Some("a"));
        assert_eq!(line.pop_front().as_deref(), Some("a"));
        assert_eq!(visitors(&line), [(1, "b"), (2, "c")]);
        assert_eq!(line.position("c"), Some(2));
        assert!(!line.contains("a"));
    }

    #[test]
    fn a_visitor_is_never_in_line_twice() {
        let mut line = Line::new();
        line.push("a");
        line.push("b");
        assert_eq!(line.push("a"), 1, "keeps its place");
        assert_eq!(line.len(), 2);
    }

    #[test]
    fn anyone_can_leave() {
        let mut line = Line::new();
        for v in ["a", "b", "c", "d"] {
            line.push(v);
        }
        assert_eq!(line.remove("c"), Some(3));
        assert_eq!(line.remove("c"), None);
        assert_eq!(line.remove("a"), Some(1));
        assert_eq!(visitors(&line), [(1, "b"), (2, "d")]);
        assert_eq!(line.push("c"), 3, "back at the tail");
        assert_eq!(line.len(), 3);
    }

    #[test]
    fn empty_line() {
        let mut line = Line::new();
        assert_eq!(line.front(), None);
        assert_eq!(line.pop_front(), None);
        assert_eq!(line.position("a"), None);
        assert_eq!(line.len(), 0);
    }
}
