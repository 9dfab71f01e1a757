//! Names as small integers: the rotation keeps each agent's state in a
//! `Vec` indexed by the agent's id, and looks a name up only where a name
//! comes in (a release, a presence change), once per call.
//!
//! The index is a hash table of entry numbers alone (4 bytes a slot, the
//! names live in their own storage): 100,000 agents fit in about half a
//! megabyte of table. Names are hashed by a seeded multiply-fold hash,
//! several times faster than SipHash on names of a few dozen bytes; the
//! seed is random per interner, so collisions cannot be precomputed. (The
//! names are agents' JIDs, accounts of the helpdesk host, not visitors'
//! input.)
//!
//! Names are stored once and stay where they are: appended to chunks that
//! are never reallocated, written over or freed while the interner lives,
//! each name after a 4-byte mark that says which entry it is. So
//! [`Interner::name`] borrows bytes at an address that stays valid and
//! unchanged for the interner's life (the NIF hands them to the VM as they
//! are, without a copy), and [`Interner::held_at`] knows a name it handed out
//! from its address alone: no hash, no probe of a table that, with 100,000
//! agents, no longer fits the caches. A name whose agent is forgotten keeps
//! its entry and its bytes, and gets them back when it returns: the storage
//! grows with the distinct names ever held (the helpdesk's accounts), not
//! with how often they come and go.
//!
//! Ids of removed names are reused (a free list, the last freed first), so the
//! `Vec` by id stays as long as the most names ever held at once.

use hashbrown::HashTable;
use std::hash::BuildHasher;

/// The most distinct names an interner holds over its life: an entry's
/// number is written before its name in 4 bytes of 7 bits. Far beyond any
/// helpdesk (each name takes memory).
pub const MAX_NAMES: usize = (1 << 28) - 1;

/// An id or entry number that is none.
const NONE: u32 = u32::MAX;

/// The entry mark before each stored name: 4 bytes of 7 bits each (ASCII,
/// so that a chunk stays a `String` and a name is borrowed as `&str`
/// without checking it again).
const MARK_LEN: usize = 4;

/// Chunks double from the first size to the largest; a longer name gets a
/// chunk of its own size.
const FIRST_CHUNK: usize = 4 << 10;
const LARGEST_CHUNK: usize = 1 << 20;

/// Where a name's bytes are: its chunk, and the offset and length there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    chunk: u32,
    offset: u32,
    len: u32,
}

/// A name ever held: where it is stored, and its id while it is held
/// (`NONE` otherwise).
#[derive(Debug)]
struct Entry {
    place: Place,
    id: u32,
}

#[derive(Debug)]
pub struct Interner {
    /// By id: its entry; `NONE` for an id free for reuse.
    entry_of: Vec<u32>,
    /// Every name ever held, by entry number.
    entries: Vec<Entry>,
    /// Entry numbers, found by the hash of their name.
    table: HashTable<u32>,
    /// The names' bytes, each after its mark. Never reallocated: a chunk is
    /// only appended to within the capacity it was made with.
    chunks: Vec<String>,
    /// Ids free for reuse.
    free: Vec<u32>,
    /// How many names are held.
    held: usize,
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
            entry_of: Vec::new(),
            entries: Vec::new(),
            table: HashTable::new(),
            chunks: Vec::new(),
            free: Vec::new(),
            held: 0,
            seed: std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64),
        }
    }

    /// How many names are held.
    pub fn len(&self) -> usize {
        self.held
    }

    pub fn is_empty(&self) -> bool {
        self.held == 0
    }

    /// One past the largest id ever handed out: a `Vec` indexed by id needs
    /// this length.
    pub fn capacity(&self) -> usize {
        self.entry_of.len()
    }

    /// The id of `name`, if held: by its address if these are the bytes
    /// [`Interner::name`] borrowed, else by its hash.
    pub fn find(&self, name: &[u8]) -> Option<u32> {
        self.held_at(name).or_else(|| self.get(name))
    }

    /// The id of `name`, if held, by its hash.
    pub fn get(&self, name: &[u8]) -> Option<u32> {
        let entry = self.entry_named(name)?;
        self.id_of_entry(entry)
    }

    /// The id of the name stored at exactly these bytes (the same memory,
    /// not just the same bytes), if it is held: found from the address,
    /// without hashing. `None` for bytes anywhere else, a part of a name, or
    /// a name no longer held.
    pub fn held_at(&self, bytes: &[u8]) -> Option<u32> {
        let address = bytes.as_ptr() as usize;
        // The newest chunks first: they are the largest, and hold most names.
        let (chunk, text, offset) =
            self.chunks
                .iter()
                .enumerate()
                .rev()
                .find_map(|(chunk, text)| {
                    let offset = address.checked_sub(text.as_ptr() as usize)?;
                    (offset < text.len()).then_some((chunk, text, offset))
                })?;
        let mark = text.as_bytes().get(offset.checked_sub(MARK_LEN)?..offset)?;
        let entry = self.entries.get(read_mark(mark))?;
        let place = Place {
            chunk: u32::try_from(chunk).ok()?,
            offset: u32::try_from(offset).ok()?,
            len: u32::try_from(bytes.len()).ok()?,
        };
        (entry.place == place && entry.id != NONE).then_some(entry.id)
    }

    /// The id of `name`, added if it was not held. `None` past
    /// [`MAX_NAMES`] distinct names, or ids, or for a name of 4 GiB.
    pub fn intern(&mut self, name: &str) -> Option<u32> {
        let hash = hash(self.seed, name.as_bytes());
        let entry = match self.entry_hashed(name.as_bytes(), hash) {
            Some(entry) => entry,
            None => self.store(name, hash)?,
        };
        if let Some(id) = self.id_of_entry(entry) {
            return Some(id);
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.entry_of[id as usize] = entry;
                id
            }
            None if self.entry_of.len() < NONE as usize => {
                self.entry_of.push(entry);
                (self.entry_of.len() - 1) as u32
            }
            None => return None,
        };
        self.entries[entry as usize].id = id;
        self.held += 1;
        Some(id)
    }

    /// The name of `id` ("" for an id not held). Its bytes stay at this
    /// address, unchanged, for as long as the interner lives.
    pub fn name(&self, id: u32) -> &str {
        match self.entry_of.get(id as usize) {
            Some(&entry) if entry != NONE => self.text(entry),
            _ => "",
        }
    }

    /// Every id held and its name, by id.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &str)> {
        (0..)
            .zip(&self.entry_of)
            .filter(|&(_, &entry)| entry != NONE)
            .map(|(id, &entry)| (id, self.text(entry)))
    }

    /// Forgets `id`; the id may be handed out again. The name keeps its
    /// entry and its bytes (see the module's documentation).
    pub fn remove(&mut self, id: u32) {
        let Some(entry) = self.entry_of.get_mut(id as usize) else {
            return;
        };
        if *entry == NONE {
            return;
        }
        self.entries[*entry as usize].id = NONE;
        *entry = NONE;
        self.free.push(id);
        self.held -= 1;
    }

    /// The entry of `name`, held or not, by its hash.
    fn entry_named(&self, name: &[u8]) -> Option<u32> {
        self.entry_hashed(name, hash(self.seed, name))
    }

    /// The entry of `name`, whose hash is `hash`.
    fn entry_hashed(&self, name: &[u8], hash: u64) -> Option<u32> {
        let (entries, chunks) = (&self.entries, &self.chunks);
        self.table
            .find(hash, |&entry| {
                text_of(entries, chunks, entry).as_bytes() == name
            })
            .copied()
    }

    fn id_of_entry(&self, entry: u32) -> Option<u32> {
        let id = self.entries.get(entry as usize)?.id;
        (id != NONE).then_some(id)
    }

    fn text(&self, entry: u32) -> &str {
        text_of(&self.entries, &self.chunks, entry)
    }

    /// Stores `name` after its mark, in the last chunk if it has room (no
    /// reallocation), else in a new one, and makes its entry (not held);
    /// `name_hash` is its hash, which `intern` has taken already.
    fn store(&mut self, name: &str, name_hash: u64) -> Option<u32> {
        if self.entries.len() >= MAX_NAMES {
            return None;
        }
        let entry = self.entries.len() as u32;
        let len = u32::try_from(name.len()).ok()?;
        let needed = MARK_LEN.checked_add(name.len())?;
        let has_room = |chunk: &String| chunk.capacity() - chunk.len() >= needed;
        if !self.chunks.last().is_some_and(has_room) {
            let size = self
                .chunks
                .last()
                .map_or(FIRST_CHUNK, |last| last.capacity().saturating_mul(2))
                .clamp(FIRST_CHUNK, LARGEST_CHUNK)
                .max(needed);
            u32::try_from(size).ok()?;
            self.chunks.push(String::with_capacity(size));
        }
        let chunk_no = u32::try_from(self.chunks.len() - 1).ok()?;
        let chunk = self.chunks.last_mut()?;
        let offset = u32::try_from(chunk.len() + MARK_LEN).ok()?;
        u32::try_from(chunk.len() + needed).ok()?;
        chunk.extend(mark(entry).map(char::from));
        chunk.push_str(name);
        self.entries.push(Entry {
            place: Place {
                chunk: chunk_no,
                offset,
                len,
            },
            id: NONE,
        });
        let (seed, entries, chunks) = (self.seed, &self.entries, &self.chunks);
        self.table.insert_unique(name_hash, entry, |&entry| {
            hash(seed, text_of(entries, chunks, entry).as_bytes())
        });
        Some(entry)
    }
}

/// The stored name of `entry` ("" for none).
fn text_of<'a>(entries: &[Entry], chunks: &'a [String], entry: u32) -> &'a str {
    entries
        .get(entry as usize)
        .and_then(|e| {
            let start = e.place.offset as usize;
            chunks
                .get(e.place.chunk as usize)?
                .get(start..start + e.place.len as usize)
        })
        .unwrap_or("")
}

/// `entry` in 4 bytes of 7 bits, the lowest first.
fn mark(entry: u32) -> [u8; MARK_LEN] {
    [0, 7, 14, 21].map(|shift| ((entry >> shift) & 0x7f) as u8)
}

fn read_mark(mark: &[u8]) -> usize {
    mark.iter()
        .rev()
        .fold(0, |entry, &byte| entry << 7 | usize::from(byte & 0x7f))
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
        assert_eq!(names.get(b"b@helpdesk"), Some(b));
        assert_eq!(names.get(b"c@helpdesk"), None);
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
        assert_eq!(names.get(b"agent40"), None);
        assert_eq!(names.len(), 99);
        assert_eq!(names.intern("newcomer"), Some(ids[40]));
        assert_eq!(names.name(ids[40]), "newcomer");
        assert_eq!(names.capacity(), 100, "no new slot");
        assert_eq!(names.iter().count(), 100);
        assert_eq!(names.iter().nth(40), Some((ids[40], "newcomer")));
        for i in (0..100).filter(|&i| i != 40) {
            assert_eq!(names.get(format!("agent{i}").as_bytes()), Some(ids[i]));
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
            assert_eq!(names.name(names.get(n.as_bytes()).unwrap()), n);
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

    #[test]
    fn a_name_handed_out_is_known_by_its_address() {
        let mut names = Interner::new();
        let a = names.intern("a@helpdesk").unwrap();
        let b = names.intern("b@helpdesk").unwrap();
        let stored_a = names.name(a).as_bytes();
        assert_eq!(names.held_at(stored_a), Some(a));
        assert_eq!(names.held_at(names.name(b).as_bytes()), Some(b));
        assert_eq!(names.find(stored_a), Some(a));
        // The same bytes elsewhere: not by address, but by hash.
        let copy = b"a@helpdesk".to_vec();
        assert_eq!(names.held_at(&copy), None);
        assert_eq!(names.find(&copy), Some(a));
        // A part of a stored name, or a stored name and more: neither.
        assert_eq!(names.held_at(&stored_a[..1]), None);
        assert_eq!(names.held_at(&stored_a[1..]), None);
        let (ptr, len) = (stored_a.as_ptr() as usize, stored_a.len());
        let with_next: Vec<u8> = names.chunks[0].as_bytes()
            [ptr - names.chunks[0].as_ptr() as usize..][..len + 2]
            .to_vec();
        assert_eq!(
            names.held_at(&with_next),
            None,
            "a copy, at another address"
        );
        assert_eq!(names.find(b"nobody"), None);
        assert_eq!(names.find(b"\xff\xfe"), None, "not UTF-8: held by nobody");
    }

    #[test]
    fn a_forgotten_name_is_not_found_at_its_address_until_it_returns() {
        let mut names = Interner::new();
        let a = names.intern("a@helpdesk").unwrap();
        let stored = names.name(a).as_ptr();
        names.remove(a);
        let at_old_address = names.chunks[0].as_bytes();
        let offset = stored as usize - at_old_address.as_ptr() as usize;
        let old_bytes = &at_old_address[offset..offset + "a@helpdesk".len()];
        assert_eq!(old_bytes, b"a@helpdesk", "the bytes stay as they were");
        assert_eq!(names.held_at(old_bytes), None);
        assert_eq!(names.find(old_bytes), None);
        // Its id goes to a newcomer; its bytes stay its own.
        let newcomer = names.intern("newcomer").unwrap();
        assert_eq!(newcomer, a, "the id is reused");
        assert_eq!(
            names.held_at(names.name(newcomer).as_bytes()),
            Some(newcomer)
        );
        let back = names.intern("a@helpdesk").unwrap();
        assert_eq!(names.name(back).as_ptr(), stored, "stored once");
        assert_eq!(names.held_at(names.name(back).as_bytes()), Some(back));
    }

    #[test]
    fn stored_names_never_move_as_storage_grows() {
        let mut names = Interner::new();
        let long = "x".repeat(3 * LARGEST_CHUNK / 2);
        let mut seen = Vec::new();
        for i in 0..60_000 {
            let name = if i == 30_000 {
                long.clone()
            } else {
                format!("agent{i}@helpdesk.example.com")
            };
            let id = names.intern(&name).unwrap();
            seen.push((id, names.name(id).as_ptr(), name));
            if i % 7 == 0 {
                names.remove(id);
                assert_eq!(names.intern(&seen[i].2), Some(id));
            }
        }
        assert!(names.chunks.len() > 3, "{} chunks", names.chunks.len());
        for (id, address, name) in &seen {
            let stored = names.name(*id);
            assert_eq!(stored, name);
            assert_eq!(stored.as_ptr(), *address, "{name} moved");
            assert_eq!(names.held_at(stored.as_bytes()), Some(*id));
        }
        assert_eq!(names.len(), 60_000);
        assert_eq!(names.entries.len(), 60_000, "each name stored once");
    }

    #[test]
    fn marks_read_back_the_entry() {
        for entry in [0, 1, 127, 128, 16_383, 16_384, MAX_NAMES as u32] {
            let mark = mark(entry);
            assert!(mark.is_ascii());
            assert_eq!(read_mark(&mark), entry as usize);
        }
    }
}
