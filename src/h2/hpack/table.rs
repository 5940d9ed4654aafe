//! The indexing tables (RFC 7541 §2.3): the static table of Appendix A and
//! one side's dynamic table, behind the single index address space of
//! §2.3.3 (1..=61 static, 62.. dynamic, newest first).
//!
//! Encoder and decoder each keep a [`Table`] and apply the same inserts and
//! size changes in the same order, which is all that keeps them in sync.

use std::collections::VecDeque;

/// Per-entry overhead in the size of an entry (§4.1), "an estimated
/// overhead associated with an entry": a peer holding a million empty
/// fields still pays for them.
pub(super) const ENTRY_OVERHEAD: usize = 32;

/// The static table (Appendix A); index `i` (1-based) is `STATIC[i - 1]`.
pub(super) const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// The size of an entry (§4.1): name and value lengths plus
/// [`ENTRY_OVERHEAD`]. Saturating, though lengths of strings in memory
/// cannot get near `usize::MAX`.
pub(super) fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len()
        .saturating_add(value.len())
        .saturating_add(ENTRY_OVERHEAD)
}

/// What [`Table::find`] found for a field, by index (§2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    /// An entry with this name and value.
    Field(usize),
    /// An entry with this name (none with the value too).
    Name(usize),
    /// Neither.
    None,
}

/// One dynamic table entry; two boxes rather than one split buffer, so
/// there is no offset to trust.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: Box<[u8]>,
    value: Box<[u8]>,
}

/// The static table followed by one side's dynamic table.
///
/// The dynamic table holds at most `max_size` bytes by the §4.1 measure,
/// so at most `max_size / 32` entries, whatever a peer sends.
#[derive(Debug)]
pub(super) struct Table {
    /// Newest first: `entries[0]` has index 62.
    entries: VecDeque<Entry>,
    /// Sum of the entries' sizes (§4.1); always <= `max_size`.
    size: usize,
    /// The dynamic table's maximum size (§4.2).
    max_size: usize,
}

impl Table {
    /// An empty dynamic table of `max_size` bytes.
    pub(super) fn new(max_size: usize) -> Table {
        Table {
            entries: VecDeque::new(),
            size: 0,
            max_size,
        }
    }

    /// The field at `index` (1-based, §2.3.3), or `None` for 0 and indexes
    /// past the end.
    pub(super) fn get(&self, index: usize) -> Option<(&[u8], &[u8])> {
        let i = index.checked_sub(1)?;
        match STATIC.get(i) {
            Some((name, value)) => Some((name.as_bytes(), value.as_bytes())),
            None => {
                let entry = self.entries.get(i.checked_sub(STATIC.len())?)?;
                Some((&entry.name, &entry.value))
            }
        }
    }

    /// Looks a field up for the encoder: an exact match if there is one,
    /// else a name match. The static table is searched first both times:
    /// its indexes are small (one octet) and never go stale.
    pub(super) fn find(&self, name: &[u8], value: &[u8]) -> Found {
        let mut found = Found::None;
        for (i, (n, v)) in STATIC.iter().enumerate() {
            if n.as_bytes() == name {
                if v.as_bytes() == value {
                    return Found::Field(i + 1);
                }
                if found == Found::None {
                    found = Found::Name(i + 1);
                }
            }
        }
        for (i, entry) in self.entries.iter().enumerate() {
            if *entry.name == *name {
                if *entry.value == *value {
                    return Found::Field(STATIC.len() + 1 + i);
                }
                if found == Found::None {
                    found = Found::Name(STATIC.len() + 1 + i);
                }
            }
        }
        found
    }

    /// The index of an entry named `name`, if any (static first).
    pub(super) fn find_name(&self, name: &[u8]) -> Option<usize> {
        let in_static = STATIC.iter().position(|(n, _)| n.as_bytes() == name);
        let in_dynamic = || {
            let i = self.entries.iter().position(|e| *e.name == *name)?;
            Some(STATIC.len() + 1 + i)
        };
        in_static.map(|i| i + 1).or_else(in_dynamic)
    }

    /// Adds a field as the newest entry, evicting the oldest ones until it
    /// fits (§4.4). An entry larger than the whole table is not an error:
    /// it empties the table and is not added.
    ///
    /// The caller copies a name it took from this table before calling, as
    /// the entry it names may be evicted here (§4.4 allows that).
    pub(super) fn insert(&mut self, name: Box<[u8]>, value: Box<[u8]>) {
        let size = entry_size(&name, &value);
        if size > self.max_size {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size.saturating_sub(size));
        self.entries.push_front(Entry { name, value });
        self.size = self.size.saturating_add(size);
    }

    /// Sets the maximum size, evicting the oldest entries that no longer
    /// fit (§4.3).
    pub(super) fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_to(max_size);
    }

    /// The maximum size (§4.2).
    pub(super) fn max_size(&self) -> usize {
        self.max_size
    }

    /// Evicts from the oldest end until the entries take at most `room`.
    fn evict_to(&mut self, room: usize) {
        while self.size > room {
            match self.entries.pop_back() {
                // Each entry's size was added when it went in.
                Some(old) => {
                    self.size = self.size.saturating_sub(entry_size(&old.name, &old.value));
                }
                None => {
                    // Unreachable: `size` is the sum over `entries`.
                    self.size = 0;
                }
            }
        }
    }

    /// The current size (§4.1).
    #[cfg(any(test, feature = "_fuzz"))]
    pub(super) fn size(&self) -> usize {
        self.size
    }

    /// The dynamic entries, newest first, as (name, value).
    #[cfg(any(test, feature = "_fuzz"))]
    pub(super) fn entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries.iter().map(|e| (&*e.name, &*e.value))
    }
}
