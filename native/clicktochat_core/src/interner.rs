//! Names as small integers: the rotation keeps each agent's state in a
//! `Vec` indexed by the agent's id, and looks a name up only where a name
//! comes in (a release, a presence change), once per call.
//!
//! The index is a hash table of ids alone (4 bytes a slot, the names live
//! in their own `Vec`): 100,000 agents fit in about half a megabyte of
//! table. Names are hashed by a seeded multiply-fold hash, several times
//! faster than SipHash on names of a few dozen bytes; the seed is random
//! per interner, so collisions cannot be precomputed. (The names are agents'
//! JIDs, accounts of the helpdesk host, not visitors' input.)
//!
//! Ids of removed names are reused (a free list, the last freed first), so the
//! `Vec`s stay as long as the most names ever held at once.

use hashbrown::HashTable;
use std::hash::BuildHasher;

/// The most names held at once: ids are `u32` and `u32::MAX` is the links'
/// "none". Far beyond any helpdesk (each name takes memory).
pub const MAX_NAMES: usize = (u32::MAX - 1) as usize;

#[derive(Debug)]
pub struct Interner {
    /// By id; a removed name's slot is `None` until reused.
    names: Vec<Option<Box<str>>>,
    /// Ids, found by the hash of their name.
    table: HashTable<u32>,
    /// Ids free for reuse.
    free: Vec<u32>,
    seed: u64,
}

impl Default for Interner {
    fn default() -> Self {
        Interner::new()
    }
}

impl Interner {
    pub fn new() -> Self {
        Interner {
            names: Vec::new(),
            table: HashTable::new(),
            free: Vec::new(),
            seed: std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64),
        }
    }

    /// How many names are held.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// One past the largest id ever handed out: a `Vec` indexed by id needs
    /// this length.
    pub fn capacity(&self) -> usize {
        self.names.len()
    }

    /// The id of `name`, if held.
    pub fn get(&self, name: &str) -> Option<u32> {
        let names = &self.names;
        self.table
            .find(hash(self.seed, name.as_bytes()), |&id| {
                names
                    .get(id as usize)
                    .is_some_and(|n| n.as_deref() == Some(name))
            })
            .copied()
    }

    /// The id of `name`, added if it was not held. `None` only past
    /// [`MAX_NAMES`].
    pub fn intern(&mut self, name: &str) -> Option<u32> {
        if let Some(id) = self.get(name) {
            return Some(id);
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.names[id as usize] = Some(name.into());
                id
            }
            None if self.names.len() < MAX_NAMES => {
                self.names.push(Some(name.into()));
                (self.names.len() - 1) as u32
            }
            None => return None,
        };
        let (seed, names) = (self.seed, &self.names);
        self.table
            .insert_unique(hash(seed, name.as_bytes()), id, |&id| {
                hash(seed, name_of(names, id).as_bytes())
            });
        Some(id)
    }

    /// The name of `id` ("" for an id not held).
    pub fn name(&self, id: u32) -> &str {
        name_of(&self.names, id)
    }

    /// Every id held and its name, by id.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &str)> {
        (0..)
            .zip(&self.names)
            .filter_map(|(id, name)| Some((id, name.as_deref()?)))
    }

    /// Forgets `id`'s name; the id may be handed out again.
    pub fn remove(&mut self, id: u32) {
        let Some(Some(name)) = self.names.get(id as usize) else {
            return;
        };
        let found = self
            .table
            .find_entry(hash(self.seed, name.as_bytes()), |&other| other == id);
        if let Ok(entry) = found {
            entry.remove();
            self.names[id as usize] = None;
            self.free.push(id);
        }
    }
}

fn name_of(names: &[Option<Box<str>>], id: u32) -> &str {
    names
        .get(id as usize)
        .and_then(|n| n.as_deref())
        .unwrap_or("")
}

/// A seeded hash of `bytes`: 8 bytes at a time, each mixed in by a 64x64 ->
/// 128-bit multiply folded to 64 bits (the mixing step of foldhash and
/// wyhash), the length in the seed, a final fold for the bits hashbrown
/// takes from the top. The bytes past the last whole 8 are read as the last
/// 8 (overlapping), and a name under 8 bytes in two overlapping reads, as
/// wyhash does: fixed-size loads, no copy of a variable length.
fn hash(seed: u64, bytes: &[u8]) -> u64 {
    const K0: u64 = 0x243f_6a88_85a3_08d3;
    const K1: u64 = 0x1319_8a2e_0370_7344;
    let len = bytes.len();
    let mut h = seed ^ (len as u64).wrapping_mul(K0);
    if len >= 8 {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            h = fold_mul(h ^ word(chunk), K1);
        }
        if !chunks.remainder().is_empty() {
            h = fold_mul(h ^ word(&bytes[len - 8..]), K1);
        }
    } else if len >= 4 {
        let low = u64::from(half(&bytes[..4]));
        let high = u64::from(half(&bytes[len - 4..]));
        h = fold_mul(h ^ (low | high << 32), K1);
    } else if len > 0 {
        let small =
            u64::from(bytes[0]) | u64::from(bytes[len / 2]) << 8 | u64::from(bytes[len - 1]) << 16;
        h = fold_mul(h ^ small, K1);
    }
    fold_mul(h ^ seed, K0)
}

/// 8 bytes, little-endian.
fn word(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}

/// 4 bytes, little-endian.
fn half(bytes: &[u8]) -> u32 {
    let mut half = [0u8; 4];
    half.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(half)
}

fn fold_mul(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn interns_each_name_once() {
        let mut names = Interner::new();
        assert!(names.is_empty());
        let a = names.intern("a@helpdesk").unwrap();
        let b = names.intern("b@helpdesk").unwrap();
        assert_ne!(a, b);
        assert_eq!(names.intern("a@helpdesk"), Some(a));
        assert_eq!(names.get("b@helpdesk"), Some(b));
        assert_eq!(names.get("c@helpdesk"), None);
        assert_eq!(names.name(a), "a@helpdesk");
        assert_eq!(names.len(), 2);
        assert_eq!(names.name(99), "");
    }

    #[test]
    fn removed_ids_are_reused() {
        let mut names = Interner::new();
        let ids: Vec<u32> = (0..100)
            .map(|i| names.intern(&format!("agent{i}")).unwrap())
            .collect();
        names.remove(ids[40]);
        names.remove(ids[40]);
        assert_eq!(names.get("agent40"), None);
        assert_eq!(names.len(), 99);
        assert_eq!(names.intern("newcomer"), Some(ids[40]));
        assert_eq!(names.name(ids[40]), "newcomer");
        assert_eq!(names.capacity(), 100, "no new slot");
        assert_eq!(names.iter().count(), 100);
        assert_eq!(names.iter().nth(40), Some((ids[40], "newcomer")));
        for i in (0..100).filter(|&i| i != 40) {
            assert_eq!(names.get(&format!("agent{i}")), Some(ids[i]));
        }
    }

    #[test]
    fn names_differing_anywhere_are_told_apart() {
        // Lengths around the 8-byte chunks, the empty name, NULs (which
        // the padding of the last chunk must not confuse with absence).
        let mut all = vec![String::new(), "\0".into(), "\0\0".into()];
        for len in 1..=24 {
            for at in 0..len {
                let mut name = vec![b'a'; len];
                name[at] = b'b';
                all.push(String::from_utf8(name).unwrap());
            }
            all.push("a".repeat(len));
        }
        let mut names = Interner::new();
        let ids: HashSet<u32> = all.iter().map(|n| names.intern(n).unwrap()).collect();
        assert_eq!(ids.len(), all.len());
        for n in &all {
            assert_eq!(names.name(names.get(n).unwrap()), n);
        }
    }

    #[test]
    fn hash_spreads_similar_names() {
        // Names as agents have them, differing in one digit: the top 7 bits
        // (hashbrown's tags) and the low bits (its buckets) both vary.
        let hashes: Vec<u64> = (0..4096)
            .map(|i| hash(1, format!("agent{i}@helpdesk.example.com").as_bytes()))
            .collect();
        let tags: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        let buckets: HashSet<u64> = hashes.iter().map(|h| h & 4095).collect();
        assert!(tags.len() > 120, "{} tags", tags.len());
        assert!(buckets.len() > 2400, "{} buckets", buckets.len());
        assert_ne!(hash(1, b"x"), hash(2, b"x"), "the seed counts");
    }
}
