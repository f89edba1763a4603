//! The mbuf store: every mbuf is a tracked handle, and freed mbufs are poisoned and
//! quarantined so a stale handle is caught (the simulator's stand-in for XNU's mbuf pools,
//! bsd/kern/uipc_mbuf.c `m_get`/`m_free`).
//!
//! With `Config::track_mbufs` off (performance runs only), handles are trusted: an mbuf is its
//! own heap box and no table is consulted, so the KPI costs no global lock. Leak accounting
//! (live and allocated counts) works in both modes.

use super::tags::Tag;
use crate::abi::*;
use crate::config;
use crate::fasthash::AddrMap;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

const POISON: u8 = 0xDB;
const QUARANTINE: usize = 4096;

/// The packet header of the first mbuf of a packet.
pub(super) struct PktHdr {
    pub(super) len: usize,
    pub(super) rcvif: usize,
    pub(super) header: usize,
    /// The link-layer `m_flags` bits that travel with the packet header (`M_BCAST`,
    /// `M_MCAST`, `M_PROMISC`, `M_LOOP`; bsd/sys/mbuf.h `M_COPYFLAGS`).
    pub(super) flags: u32,
    /// The packet's tags (`m_tag_prepend`); they go with the packet header and are freed with it.
    pub(super) tags: Vec<Tag>,
}

/// One mbuf: its storage, the data window in it, its links and its packet header.
pub(super) struct SimMbuf {
    pub(super) buf: Vec<u8>,
    pub(super) off: usize,
    pub(super) len: usize,
    pub(super) next: usize,
    pub(super) nextpkt: usize,
    pub(super) pkthdr: Option<PktHdr>,
}

/// The live mbufs and the quarantine of freed ones.
#[derive(Default)]
pub(super) struct Mbufs {
    /// Tracked mode: the live mbufs, by handle (the table owns them).
    live: AddrMap<usize, Box<SimMbuf>>,
    quarantine: VecDeque<Box<SimMbuf>>,
}

static MBUFS: Mutex<Option<Mbufs>> = Mutex::new(None);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static ALLOCATED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Untracked mode: an empty table standing in for the global one, so the same code runs
    /// without taking the global lock.
    static UNTRACKED: RefCell<Mbufs> = RefCell::new(Mbufs::default());
}

/// Whether handles are checked against the table of live mbufs.
fn tracked() -> bool {
    !config::booted() || config::config().track_mbufs
}

/// Runs `f` on the store (the global table, or the thread's empty one when untracked).
pub(super) fn with<R>(f: impl FnOnce(&mut Mbufs) -> R) -> R {
    if tracked() {
        f(MBUFS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(Mbufs::default))
    } else {
        UNTRACKED.with(|t| f(&mut t.borrow_mut()))
    }
}

/// The mbuf behind handle `m`; a handle that is not live panics (tracked mode).
pub(super) fn seg(t: &mut Mbufs, m: mbuf_t) -> &mut SimMbuf {
    if !tracked() {
        // SAFETY: untracked mode trusts the driver: `m` came from `new_mbuf` (a leaked box)
        // and has not been freed. Performance runs only; correctness runs track handles.
        return unsafe { &mut *(m as *mut SimMbuf) };
    }
    t.live.get_mut(&(m as usize)).unwrap_or_else(|| {
        panic!("mbuf {m:p}: not a live mbuf (stale, double-freed or never allocated)")
    })
}

/// A new mbuf of `capacity` bytes after `lead` bytes of leading room, filled with 0xA5, with
/// a packet header if `pkthdr`; its handle.
pub(super) fn new_mbuf(t: &mut Mbufs, capacity: usize, lead: usize, pkthdr: bool) -> usize {
    let mut mb = Box::new(SimMbuf {
        buf: vec![0xA5; capacity + lead],
        off: lead,
        len: 0,
        next: 0,
        nextpkt: 0,
        pkthdr: pkthdr.then_some(PktHdr {
            len: 0,
            rcvif: 0,
            header: 0,
            flags: 0,
            tags: Vec::new(),
        }),
    });
    LIVE.fetch_add(1, Relaxed);
    ALLOCATED.fetch_add(1, Relaxed);
    if !tracked() {
        return Box::into_raw(mb) as usize;
    }
    let addr = &mut *mb as *mut SimMbuf as usize;
    t.live.insert(addr, mb);
    addr
}

/// Frees one mbuf (poisoned and quarantined when tracked) and returns its successor.
pub(super) fn free_one(t: &mut Mbufs, m: usize) -> usize {
    LIVE.fetch_sub(1, Relaxed);
    if !tracked() {
        // SAFETY: as in `seg`; the box is freed exactly once, here.
        let mb = unsafe { Box::from_raw(m as *mut SimMbuf) };
        return mb.next;
    }
    let mut mb = t
        .live
        .remove(&m)
        .unwrap_or_else(|| panic!("mbuf_free {m:#x}: not a live mbuf (double free?)"));
    let next = mb.next;
    if config::booted() && config::config().poison {
        mb.buf.fill(POISON);
        t.quarantine.push_back(mb);
        if t.quarantine.len() > QUARANTINE {
            t.quarantine.pop_front();
        }
    }
    next
}

/// Live mbufs (leak accounting).
pub fn live_mbufs() -> usize {
    LIVE.load(Relaxed)
}

/// mbufs allocated since boot.
pub fn mbufs_allocated() -> u64 {
    ALLOCATED.load(Relaxed)
}
