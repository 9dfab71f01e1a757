//! A first-in first-out list of small integer ids (the rotation's agents),
//! linked through two `Vec`s indexed by id: append at the tail, take any id
//! out wherever it stands, read the head and its successor, all O(1) and
//! without allocating once the `Vec`s cover the ids. Each id is in the list
//! at most once.

const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Links {
    prev: u32,
    next: u32,
    linked: bool,
}

const UNLINKED: Links = Links {
    prev: NONE,
    next: NONE,
    linked: false,
};

#[derive(Debug)]
pub struct IdList {
    links: Vec<Links>,
    head: u32,
    tail: u32,
    len: usize,
}

impl Default for IdList {
    fn default() -> Self {
        IdList::new()
    }
}

impl IdList {
    pub fn new() -> Self {
        IdList {
            links: Vec::new(),
            head: NONE,
            tail: NONE,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn contains(&self, id: u32) -> bool {
        self.links.get(id as usize).is_some_and(|l| l.linked)
    }

    /// The first id.
    pub fn front(&self) -> Option<u32> {
        (self.head != NONE).then_some(self.head)
    }

    /// The id after `id`, if `id` is in the list and not its tail.
    pub fn next(&self, id: u32) -> Option<u32> {
        let links = self.links.get(id as usize).filter(|l| l.linked)?;
        (links.next != NONE).then_some(links.next)
    }

    /// Appends `id` at the tail; nothing if it is in the list already (it
    /// keeps its place) or is `u32::MAX`.
    pub fn push_back(&mut self, id: u32) {
        if id == NONE || self.contains(id) {
            return;
        }
        let index = id as usize;
        if index >= self.links.len() {
            self.links.resize(index + 1, UNLINKED);
        }
        self.links[index] = Links {
            prev: self.tail,
            next: NONE,
            linked: true,
        };
        match self.tail {
            NONE => self.head = id,
            tail => self.links[tail as usize].next = id,
        }
        self.tail = id;
        self.len += 1;
    }

    /// Takes `id` out of the list; answers whether it was in it.
    pub fn remove(&mut self, id: u32) -> bool {
        if !self.contains(id) {
            return false;
        }
        let Links { prev, next, .. } = std::mem::replace(&mut self.links[id as usize], UNLINKED);
        match prev {
            NONE => self.head = next,
            prev => self.links[prev as usize].next = next,
        }
        match next {
            NONE => self.tail = prev,
            next => self.links[next as usize].prev = prev,
        }
        self.len -= 1;
        true
    }

    /// The ids, head first.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        std::iter::successors(self.front(), |&id| self.next(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &IdList) -> Vec<u32> {
        list.iter().collect()
    }

    #[test]
    fn first_in_first_out() {
        let mut list = IdList::new();
        assert!(list.is_empty());
        assert_eq!(list.front(), None);
        for id in [3, 0, 7] {
            list.push_back(id);
        }
        list.push_back(0);
        assert_eq!(ids(&list), [3, 0, 7], "0 keeps its place");
        assert_eq!(list.len(), 3);
        assert_eq!(list.front(), Some(3));
        assert_eq!(list.next(3), Some(0));
        assert_eq!(list.next(7), None);
        assert_eq!(list.next(5), None, "not in the list");
        assert!(list.remove(3));
        assert!(!list.remove(3));
        list.push_back(3);
        assert_eq!(ids(&list), [0, 7, 3]);
    }

    #[test]
    fn removes_from_anywhere() {
        let mut list = IdList::new();
        for id in 0..5 {
            list.push_back(id);
        }
        assert!(list.remove(2));
        assert!(list.remove(4), "the tail");
        assert!(list.remove(0), "the head");
        assert_eq!(ids(&list), [1, 3]);
        assert!(list.remove(1));
        assert!(list.remove(3));
        assert!(list.is_empty());
        assert_eq!(list.front(), None);
        list.push_back(9);
        assert_eq!(ids(&list), [9]);
        assert!(!list.remove(100), "never seen");
        list.push_back(u32::MAX);
        assert_eq!(ids(&list), [9], "u32::MAX is no id");
    }

    /// Against a Vec, under a long pseudo-random sequence.
    #[test]
    fn agrees_with_a_vec() {
        let mut list = IdList::new();
        let mut model: Vec<u32> = Vec::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = (x % 64) as u32;
            if x & (1 << 40) == 0 {
                list.push_back(id);
                if !model.contains(&id) {
                    model.push(id);
                }
            } else {
                let was = model.contains(&id);
                model.retain(|&m| m != id);
                assert_eq!(list.remove(id), was);
            }
            assert_eq!(list.len(), model.len());
            assert_eq!(list.front(), model.first().copied());
        }
        assert_eq!(ids(&list), model);
    }
}
