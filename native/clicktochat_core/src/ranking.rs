//! Least busy's order: ids ranked by `(load, stamp)`, the smallest first,
//! every rank unique (a stamp is taken from a counter that only goes up).
//!
//! One bucket per load, each a `VecDeque` of `(stamp, id)` sorted by stamp,
//! in a `Vec` indexed by load, and a bitset of the loads whose bucket has an
//! id, in two levels (a bit per load, a bit per non-zero word of those), so
//! that the first load with an id is a word or two away however sparse the
//! loads. What least busy does most is O(1): the next pick is the front of
//! the first bucket; a picked agent goes to the back of the next
//! bucket (its stamp is the newest); the release that follows takes it from
//! that back, and puts it at the back of its old bucket if its stamp is the
//! newest there, as when nothing happened in between. Elsewhere in a bucket
//! an entry is found by binary search and inserted or removed by moving the
//! shorter side: O(log n) comparisons and at most n/2 moves of 16 bytes
//! (tens of µs for 100,000 agents of one load; an ordered tree kept
//! every move O(log n), but its ends split and merged nodes on every pick
//! and release: 350 ns a pair at 100,000 agents against 76 at 10).
//! (A `BTreeMap` of the loads that had an id took and put back the bucket
//! of the picked agent's new load on every pick and release: a fifth of a
//! least busy enter + release at 10 agents.) A bucket stays, with its
//! allocation, once its load has had an id: the `Vec` is as long as the
//! highest load ever ranked, which is below `max_sessions` and at most an
//! agent's visitors at once.

use std::collections::VecDeque;

/// `(load, stamp)`.
pub type Rank = (u32, u64);

#[derive(Debug, Default)]
pub struct Ranking {
    /// By load; each sorted by stamp.
    buckets: Vec<VecDeque<(u64, u32)>>,
    /// Which buckets have an id.
    loads: LoadSet,
    len: usize,
}

impl Ranking {
    pub fn new() -> Self {
        Ranking::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Ranks `id` at `rank`, which no other id has.
    #[inline]
    pub fn insert(&mut self, (load, stamp): Rank, id: u32) {
        let at = load as usize;
        match self.buckets.get_mut(at) {
            // What a pick and the release after it do: the newest stamp of
            // its load, at the back of a bucket there is already.
            Some(bucket) if bucket.back().is_none_or(|&(last, _)| last < stamp) => {
                bucket.push_back((stamp, id));
                self.loads.insert(at);
            }
            _ => self.insert_in_order(at, stamp, id),
        }
        self.len += 1;
    }

    /// The rest of `insert`: a new bucket, or a stamp older than its
    /// bucket's newest (binary search, and a move of the shorter side).
    #[cold]
    fn insert_in_order(&mut self, at: usize, stamp: u64, id: u32) {
        if self.buckets.len() <= at {
            self.buckets.resize_with(at + 1, VecDeque::new);
        }
        let bucket = &mut self.buckets[at];
        let place = bucket.partition_point(|&(s, _)| s < stamp);
        bucket.insert(place, (stamp, id));
        self.loads.insert(at);
    }

    /// Takes out the id ranked at `rank`; answers it, if there was one.
    #[inline]
    pub fn remove(&mut self, (load, stamp): Rank) -> Option<u32> {
        let bucket = self.buckets.get_mut(load as usize)?;
        let id = match (bucket.front(), bucket.back()) {
            (Some(&(s, _)), _) if s == stamp => bucket.pop_front().map(|(_, id)| id),
            (_, Some(&(s, _))) if s == stamp => bucket.pop_back().map(|(_, id)| id),
            _ => {
                let at = bucket.binary_search_by_key(&stamp, |&(s, _)| s).ok()?;
                bucket.remove(at).map(|(_, id)| id)
            }
        };
        if bucket.is_empty() {
            self.loads.remove(load as usize);
        }
        if id.is_some() {
            self.len -= 1;
        }
        id
    }

    /// The smallest-ranked id but `excluded`, with its rank, left in place:
    /// what `pop_first_other_than` takes (the tests check one by the other).
    #[cfg(test)]
    fn first_other_than(&self, excluded: Option<u32>) -> Option<(Rank, u32)> {
        let (load, at) = self.locate_first_other_than(excluded)?;
        let &(stamp, id) = self.buckets[load].get(at)?;
        Some(((load as u32, stamp), id))
    }

    /// Takes out the smallest-ranked id but `excluded` and answers it: a
    /// pick, `first_other_than` and `remove` in one step.
    #[inline]
    pub fn pop_first_other_than(&mut self, excluded: Option<u32>) -> Option<u32> {
        let (load, at) = self.locate_first_other_than(excluded)?;
        let bucket = &mut self.buckets[load];
        let (_, id) = if at == 0 {
            bucket.pop_front()?
        } else {
            bucket.remove(at)?
        };
        if bucket.is_empty() {
            self.loads.remove(load);
        }
        self.len -= 1;
        Some(id)
    }

    /// Where the smallest-ranked id but `excluded` is, as its load and its
    /// place in that load's bucket: the front of the first bucket, or the
    /// one behind it if that is `excluded`, or, if `excluded` was alone at
    /// its load, the front of the next.
    #[inline]
    fn locate_first_other_than(&self, excluded: Option<u32>) -> Option<(usize, usize)> {
        let load = self.loads.first_from(0)?;
        let bucket = &self.buckets[load];
        match bucket.front() {
            Some(&(_, id)) if Some(id) == excluded => {
                if bucket.len() > 1 {
                    Some((load, 1))
                } else {
                    Some((self.loads.first_from(load + 1)?, 0))
                }
            }
            _ => Some((load, 0)),
        }
    }

    /// The ids with their ranks, the smallest first.
    pub fn iter(&self) -> impl Iterator<Item = (Rank, u32)> + '_ {
        std::iter::successors(self.loads.first_from(0), |&load| {
            self.loads.first_from(load + 1)
        })
        .flat_map(move |load| {
            self.buckets[load]
                .iter()
                .map(move |&(stamp, id)| ((load as u32, stamp), id))
        })
    }
}

/// A set of loads, as bits: `words` a bit per load, `summary` a bit per
/// non-zero word.
#[derive(Debug, Default)]
struct LoadSet {
    words: Vec<u64>,
    summary: Vec<u64>,
}

impl LoadSet {
    #[inline]
    fn insert(&mut self, load: usize) {
        let (word, bit) = (load / 64, load % 64);
        if self.words.len() <= word {
            self.grow(word);
        }
        self.words[word] |= 1 << bit;
        self.summary[word / 64] |= 1 << (word % 64);
    }

    #[cold]
    fn grow(&mut self, word: usize) {
        self.words.resize(word + 1, 0);
        self.summary.resize(word / 64 + 1, 0);
    }

    #[inline]
    fn remove(&mut self, load: usize) {
        let (word, bit) = (load / 64, load % 64);
        let Some(bits) = self.words.get_mut(word) else {
            return;
        };
        *bits &= !(1 << bit);
        if *bits == 0 {
            self.summary[word / 64] &= !(1 << (word % 64));
        }
    }

    /// The smallest load in the set from `from` on.
    #[inline]
    fn first_from(&self, from: usize) -> Option<usize> {
        let word = from / 64;
        let bits = self.words.get(word)? & (!0 << (from % 64));
        if bits != 0 {
            return Some(word * 64 + bits.trailing_zeros() as usize);
        }
        // The next non-zero word after `word`, by the summary.
        let next = word + 1;
        let mut at = next / 64;
        let mut summary = self.summary.get(at)? & (!0 << (next % 64));
        while summary == 0 {
            at += 1;
            summary = *self.summary.get(at)?;
        }
        let word = at * 64 + summary.trailing_zeros() as usize;
        Some(word * 64 + self.words[word].trailing_zeros() as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ids(ranking: &Ranking) -> Vec<u32> {
        ranking.iter().map(|(_, id)| id).collect()
    }

    #[test]
    fn smallest_load_first_then_oldest_stamp() {
        let mut r = Ranking::new();
        assert!(r.is_empty());
        r.insert((1, 5), 10);
        r.insert((0, 7), 11);
        r.insert((0, 3), 12);
        r.insert((1, 2), 13);
        r.insert((0, 9), 14);
        assert_eq!(ids(&r), [12, 11, 14, 13, 10]);
        assert_eq!(r.len(), 5);
        assert_eq!(r.remove((0, 7)), Some(11), "from the middle");
        assert_eq!(r.remove((0, 7)), None);
        assert_eq!(r.remove((2, 7)), None, "no such load");
        assert_eq!(r.remove((0, 3)), Some(12), "the front");
        assert_eq!(r.remove((0, 9)), Some(14), "the back, the last of its load");
        assert_eq!(ids(&r), [13, 10]);
        assert_eq!(r.iter().next(), Some(((1, 2), 13)));
        assert_eq!(r.len(), 2);
    }

    /// Against a BTreeMap, under a long pseudo-random sequence of ranks.
    #[test]
    fn agrees_with_an_ordered_map() {
        let mut r = Ranking::new();
        let mut model: BTreeMap<Rank, u32> = BTreeMap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut clock = 0;
        for step in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let load = (x % 4) as u32;
            if x & (1 << 40) == 0 || model.is_empty() {
                // A new stamp, or an old one freed by a removal.
                let stamp = if x & (1 << 41) == 0 {
                    clock += 1;
                    clock
                } else {
                    (x >> 20) % (clock + 1)
                };
                if let std::collections::btree_map::Entry::Vacant(slot) = model.entry((load, stamp))
                {
                    slot.insert(step);
                    r.insert((load, stamp), step);
                }
            } else {
                let nth = (x >> 8) as usize % model.len();
                let rank = *model.keys().nth(nth).unwrap();
                assert_eq!(r.remove(rank), model.remove(&rank));
                assert_eq!(r.remove((load, clock + 1)), None);
            }
            assert_eq!(r.len(), model.len());
            let excluded = match x >> 42 & 3 {
                0 => None,
                1 => Some(step),
                _ => model.values().nth(x as usize >> 50 & 1).copied(),
            };
            let first = model
                .iter()
                .map(|(&rank, &id)| (rank, id))
                .find(|&(_, id)| Some(id) != excluded);
            assert_eq!(r.first_other_than(excluded), first);
            // Now and then a pick: the same one, taken out.
            if x >> 45 & 7 == 0 {
                assert_eq!(r.pop_first_other_than(excluded), first.map(|(_, id)| id));
                if let Some((rank, _)) = first {
                    model.remove(&rank);
                }
                assert_eq!(r.len(), model.len());
            }
        }
        let want: Vec<(Rank, u32)> = model.into_iter().collect();
        assert_eq!(r.iter().collect::<Vec<_>>(), want);
    }

    /// Loads far apart: the first from anywhere is found through the
    /// summary, across words and summary words.
    #[test]
    fn sparse_loads_are_found_in_order() {
        let mut r = Ranking::new();
        let loads = [300_000, 0, 63, 64, 4095, 4096, 262_143, 70];
        for (stamp, &load) in (0..).zip(&loads) {
            r.insert((load, stamp), load);
        }
        let mut sorted = loads;
        sorted.sort_unstable();
        assert_eq!(ids(&r), sorted);
        for (stamp, &load) in (0..).zip(&loads) {
            assert_eq!(r.remove((load, stamp)), Some(load));
            sorted = sorted.map(|l| if l == load { u32::MAX } else { l });
            let left: Vec<u32> = sorted.iter().copied().filter(|&l| l != u32::MAX).collect();
            assert_eq!(ids(&r), left);
            // Passing over the first, alone at its load: the next load's.
            let second = left.get(1).copied();
            let first = r.first_other_than(left.first().copied());
            assert_eq!(first.map(|(_, id)| id), second);
        }
        assert!(r.is_empty());
        assert_eq!(r.iter().next(), None);
        assert_eq!(r.remove((1_000_000, 0)), None, "beyond every bucket");
    }
}
