//! A chunk's text (see `rows`): bytes on the heap, or, for the chunks a pool's parent joins
//! from its workers' (`RowBuffer::extend_encoded`), bytes in memory that a fork leaves to the
//! parent alone.
//!
//! A pool forks its workers, and from then on every page of the parent's memory that the two
//! share is copied the first time the parent writes to it: a fault, which on the machines
//! measured cost 4 to 17 microseconds (a copy, and every other CPU running the parent's threads
//! told to forget the old page). The parent writes each of its workers' chunks into a joined
//! chunk while they run, a few pages a chunk, and on the heap those pages were nearly all
//! shared: about 150 faults a 40,000-item map, 2 to 3 ms of the parent's CPU, taken from the
//! workers' two cores. Pages mapped with `MADV_WIPEONFORK` (Linux 4.14 on) are not shared with
//! a child at all (the child sees them zeroed): the parent writes them as its own. The mappings
//! are kept for reuse once the writer is done with them, so that their pages are faulted in
//! once a process, not once a chunk. Elsewhere, or where the kernel refuses the advice, the
//! text stays on the heap, as before.
//!
//! A process forked from the parent sees such chunks zeroed (still valid UTF-8, no longer
//! JSON). It never stores them: a child's copy of the parent's history store finds its writer
//! thread gone and turns itself off (`persistence.store`), and a pool's worker keeps its own
//! rows, on the heap.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

/// Bytes a fork-private buffer holds: a joined chunk's most (see `rows::JOINED_BYTES`).
pub const PRIVATE_BYTES: usize = super::rows::JOINED_BYTES;

/// Most idle buffers kept for reuse (4 MiB, resident once used, for the life of the process);
/// beyond this many, a buffer the writer is done with is unmapped. Buffers of chunks waiting
/// for the writer are not counted: they are as many as the rows waiting (`MAX_QUEUED`).
const KEPT: usize = 64;

/// Fork-private mappings waiting for reuse. Taken and given back with `try_lock`: a child
/// forked while another thread held the lock never waits for it (it maps a new buffer each
/// time instead, and pools none).
static FREE: Mutex<Vec<memmap2::MmapMut>> = Mutex::new(Vec::new());

/// The kernel refused the advice once (older than Linux 4.14, or a sandbox): the text stays on
/// the heap from then on, without a mapping tried for each chunk.
static REFUSED: AtomicBool = AtomicBool::new(false);

/// A chunk's text.
#[derive(Debug)]
pub enum ChunkText {
    Heap(Vec<u8>),
    Private(PrivateBytes),
}

impl Default for ChunkText {
    fn default() -> Self {
        Self::Heap(Vec::new())
    }
}

impl Clone for ChunkText {
    fn clone(&self) -> Self {
        Self::Heap(self.to_vec())
    }
}

impl PartialEq for ChunkText {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Deref for ChunkText {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Heap(v) => v,
            Self::Private(p) => p.as_slice(),
        }
    }
}

impl ChunkText {
    /// `bytes`, in fork-private memory when they fit and the platform has it.
    pub fn private(bytes: &[u8]) -> Self {
        match PrivateBytes::with(bytes) {
            Some(p) => Self::Private(p),
            None => Self::Heap(bytes.to_vec()),
        }
    }

    /// The heap bytes to append to: a private text that is appended to is moved to the heap
    /// first (a chunk `push` encodes into is always on the heap).
    #[inline] // called once a row by a worker's `RowBuffer::push`: not worth a call of its own
    pub fn heap_mut(&mut self) -> &mut Vec<u8> {
        if let Self::Private(p) = self {
            *self = Self::Heap(p.as_slice().to_vec());
        }
        match self {
            Self::Heap(v) => v,
            Self::Private(_) => unreachable!("moved to the heap above"),
        }
    }

    /// Appends `bytes` (in place while a private text has room for them).
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        if let Self::Private(p) = self {
            if p.try_extend(bytes) {
                return;
            }
        }
        self.heap_mut().extend_from_slice(bytes);
    }

    pub fn push(&mut self, byte: u8) {
        self.extend_from_slice(&[byte]);
    }
}

/// Bytes in an anonymous mapping that a fork does not share (see the module's docs).
#[derive(Debug)]
pub struct PrivateBytes {
    map: Option<memmap2::MmapMut>,
    len: usize,
}

impl PrivateBytes {
    /// A buffer holding `bytes`, or None when they do not fit or there is no such memory here.
    fn with(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > PRIVATE_BYTES {
            return None;
        }
        let map = FREE.try_lock().and_then(|mut free| free.pop()).or_else(new_map)?;
        let mut p = Self { map: Some(map), len: 0 };
        p.try_extend(bytes).then_some(p)
    }

    fn as_slice(&self) -> &[u8] {
        self.map.as_ref().map_or(&[], |m| &m[..self.len])
    }

    fn try_extend(&mut self, bytes: &[u8]) -> bool {
        let Some(map) = self.map.as_mut() else { return false };
        let end = self.len + bytes.len();
        if end > map.len() {
            return false;
        }
        map[self.len..end].copy_from_slice(bytes);
        self.len = end;
        true
    }
}

impl Drop for PrivateBytes {
    fn drop(&mut self) {
        if let (Some(map), Some(mut free)) = (self.map.take(), FREE.try_lock()) {
            if free.len() < KEPT {
                free.push(map);
            }
        }
    }
}

/// A new fork-private mapping of `PRIVATE_BYTES`, or None (not Linux, or refused).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn new_map() -> Option<memmap2::MmapMut> {
    if REFUSED.load(Ordering::Relaxed) {
        return None;
    }
    let mut map = memmap2::MmapMut::map_anon(PRIVATE_BYTES).ok()?;
    // SAFETY: the range is this mapping's own, mapped just above; the advice changes only what
    // a later fork gives the child (zeroed pages), never what this process reads.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::madvise(map.as_mut_ptr().cast(), map.len(), libc::MADV_WIPEONFORK) };
    if rc != 0 {
        REFUSED.store(true, Ordering::Relaxed);
        return None;
    }
    Some(map)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn new_map() -> Option<memmap2::MmapMut> {
    REFUSED.store(true, Ordering::Relaxed);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether this kernel gives fork-private memory (Linux 4.14 on, outside some sandboxes).
    fn fork_private() -> bool {
        matches!(ChunkText::private(b"probe"), ChunkText::Private(_))
    }

    #[test]
    fn a_private_text_appends_in_place_then_moves_to_the_heap_when_full() {
        let mut t = ChunkText::private(b"[[1");
        assert_eq!(matches!(t, ChunkText::Private(_)), fork_private(), "private where the kernel has it");
        t.extend_from_slice(b",2]");
        t.push(b']');
        assert_eq!(&*t, b"[[1,2]]");
        t.extend_from_slice(&vec![b' '; PRIVATE_BYTES]);
        assert!(matches!(t, ChunkText::Heap(_)), "past its room, the text is on the heap");
        assert_eq!(t.len(), 7 + PRIVATE_BYTES);
        assert_eq!(&t[..7], b"[[1,2]]");
    }

    #[test]
    fn too_large_a_text_stays_on_the_heap() {
        let t = ChunkText::private(&vec![b'x'; PRIVATE_BYTES + 1]);
        assert!(matches!(t, ChunkText::Heap(_)));
    }

    #[cfg(target_os = "linux")]
    #[test]
    #[allow(unsafe_code)]
    fn a_forked_child_sees_the_private_text_zeroed_and_the_parent_keeps_it() {
        let t = ChunkText::private(b"[[\"kept\",1,2]]");
        if !fork_private() {
            return; // a kernel without the advice: nothing is private
        }
        assert!(matches!(t, ChunkText::Private(_)));
        // SAFETY: the child only reads and exits at once (no allocation, no lock).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let zeroed = t.iter().all(|&b| b == 0);
            unsafe { libc::_exit(i32::from(!zeroed)) };
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        assert_eq!(unsafe { libc::waitpid(pid, &raw mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the child read zeros");
        assert_eq!(&*t, b"[[\"kept\",1,2]]", "the parent's text is whole");
    }
}
