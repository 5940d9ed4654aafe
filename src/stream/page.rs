//! The memory under a connection's read buffer: one page, mapped on its
//! own rather than taken from the heap, so that a quiet connection can give
//! it back to the OS ([`Page::release`]). Heap memory would stay resident
//! after `free`, in malloc's arenas.
//!
//! Mapping a page, faulting it in and unmapping it costs about 6 µs on the
//! benchmark machines (three syscalls and a page fault), too much for a
//! connection per request. So the pages of closed connections are kept for
//! the next ones: a few, in a process-wide list of spares.

use std::{
    fmt,
    ops::{Deref, DerefMut},
};

use memmap2::MmapMut;
use parking_lot::Mutex;

/// Bytes in a page: the read buffer's size, as Go's bufio. Big enough for
/// typical heads in one read, small enough to keep a connection cheap;
/// large body reads bypass the buffer, so it does not limit throughput.
const PAGE: usize = 4 * 1024;

/// At most this many spare pages are kept, 128 KiB when all are resident:
/// enough for a few dozen threads that each open a connection per request.
const SPARE_LIMIT: usize = 32;

/// Pages of dropped buffers, for the next connections of any transport in
/// the process. Taken from by whoever starts a connection; given to by
/// whichever thread drops its read half (the reader thread, or a response
/// body). The lock is held for one push or pop.
static SPARES: Spares = Spares::new(SPARE_LIMIT);

/// A read buffer's page.
///
/// Invariant: `map` is `Some` until the page is dropped; `resident` is
/// false only while no byte has been written to `map` since it was mapped,
/// so the OS holds no memory for it yet.
pub(crate) struct Page {
    map: Option<MmapMut>,
    resident: bool,
}

impl Page {
    /// A spare page if there is one, else a new mapping. Fails only when
    /// the OS refuses the mapping (out of memory, or the process's map
    /// count limit).
    pub(crate) fn take() -> std::io::Result<Page> {
        match SPARES.take() {
            Some(page) => Ok(page),
            None => Page::map(),
        }
    }

    /// A new mapping: zeroed, and not resident until written.
    fn map() -> std::io::Result<Page> {
        Ok(Page {
            map: Some(MmapMut::map_anon(PAGE)?),
            resident: false,
        })
    }

    /// The page may be resident: bytes were written to it.
    pub(crate) fn is_resident(&self) -> bool {
        self.resident
    }

    /// Records that bytes were written to the page (a read filled it).
    pub(crate) fn written(&mut self) {
        self.resident = true;
    }

    /// Gives a resident page back to the OS and puts a fresh mapping in its
    /// place, which costs no memory until written. The contents are lost.
    /// Returns whether the page went back: not when it was not resident, or
    /// when the OS refused the new mapping (then the old page stays).
    pub(crate) fn release(&mut self) -> bool {
        if !self.resident {
            return false;
        }
        let Ok(fresh) = MmapMut::map_anon(PAGE) else {
            return false;
        };
        // The old mapping is unmapped as it is replaced (an `MmapMut`, not
        // a `Page`: it does not go to the spares).
        self.map = Some(fresh);
        self.resident = false;
        true
    }
}

impl Deref for Page {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }
}

impl DerefMut for Page {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.map.as_deref_mut().unwrap_or_default()
    }
}

impl Drop for Page {
    /// Kept as a spare if there is room; unmapped otherwise.
    fn drop(&mut self) {
        if let Some(map) = self.map.take() {
            SPARES.give(Page {
                map: Some(map),
                resident: self.resident,
            });
        }
    }
}

impl fmt::Debug for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Page")
            .field("resident", &self.resident)
            .finish()
    }
}

/// A bounded list of spare pages.
struct Spares {
    pages: Mutex<Vec<Page>>,
    limit: usize,
}

impl Spares {
    const fn new(limit: usize) -> Spares {
        Spares {
            pages: Mutex::new(Vec::new()),
            limit,
        }
    }

    fn take(&self) -> Option<Page> {
        self.pages.lock().pop()
    }

    /// Keeps `page` if there is room. A page that is not kept is unmapped
    /// after the lock is released.
    fn give(&self, page: Page) {
        let refused = {
            let mut pages = self.pages.lock();
            if pages.len() < self.limit {
                pages.push(page);
                None
            } else {
                Some(page)
            }
        };
        if let Some(mut page) = refused {
            // Unmapped here, not offered again.
            drop(page.map.take());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        fs::File,
        io::{Read, Seek, SeekFrom},
    };

    use super::*;

    /// Whether the OS holds memory for the page at `addr`: the "present"
    /// bit of its `/proc/self/pagemap` entry.
    fn present(addr: *const u8) -> bool {
        let mut f = File::open("/proc/self/pagemap").expect("open /proc/self/pagemap");
        let entry = (addr as u64 / PAGE as u64) * 8;
        f.seek(SeekFrom::Start(entry)).expect("seek pagemap");
        let mut bytes = [0u8; 8];
        f.read_exact(&mut bytes).expect("read pagemap");
        u64::from_le_bytes(bytes) >> 63 == 1
    }

    #[test]
    fn a_page_costs_nothing_until_written() {
        let mut p = Page::map().expect("map");
        assert_eq!(p.len(), PAGE);
        assert_eq!(p.as_ptr() as usize % PAGE, 0, "page-aligned");
        assert!(!p.is_resident());
        assert!(!present(p.as_ptr()), "mapped, not yet resident");
        p[..5].copy_from_slice(b"hello");
        p.written();
        assert!(p.is_resident());
        assert!(present(p.as_ptr()), "written, so resident");
    }

    #[test]
    fn release_gives_a_written_page_back() {
        let mut p = Page::map().expect("map");
        assert!(!p.release(), "nothing to give back yet");
        p[..5].copy_from_slice(b"hello");
        p.written();
        assert!(p.release());
        assert!(!p.is_resident());
        assert!(!present(p.as_ptr()), "the fresh mapping is not resident");
        assert_eq!(p.len(), PAGE);
        // Usable as before; the old contents are gone.
        p[..5].copy_from_slice(b"again");
        p.written();
        assert_eq!(&p[..5], b"again");
        assert!(present(p.as_ptr()));
    }

    #[test]
    fn spares_are_bounded_and_remember_residency() {
        let spares = Spares::new(2);
        let mut written = Page::map().expect("map");
        written[0] = 1;
        written.written();
        spares.give(written);
        spares.give(Page::map().expect("map"));
        spares.give(Page::map().expect("map"));
        assert_eq!(spares.pages.lock().len(), 2, "the third is refused");
        let last = spares.take().expect("a spare");
        assert!(!last.is_resident());
        let first = spares.take().expect("a spare");
        assert!(first.is_resident());
        assert_eq!(first[0], 1, "a spare keeps its page");
        assert!(spares.take().is_none());
    }
}
