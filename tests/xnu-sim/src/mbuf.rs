//! mbufs (xnu bsd/sys/kpi_mbuf.h): every mbuf is a tracked handle; chains are fragmented at
//! random; freed mbufs are poisoned and quarantined so a stale handle is caught.
//!
//! With `Config::track_mbufs` off (performance runs only), handles are trusted: an mbuf is its
//! own heap box and no table is consulted, so the KPI costs no global lock. Leak accounting
//! (live and allocated counts) works in both modes.

use crate::abi::*;
use crate::config::{self, Fault};
use crate::fasthash::AddrMap;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::{c_int, c_uint, c_void};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

const POISON: u8 = 0xDB;
const QUARANTINE: usize = 4096;
/// Largest segment: a 16 KiB jumbo cluster.
const MAX_SEGMENT: usize = 16 * 1024;

struct PktHdr {
    len: usize,
    rcvif: usize,
    header: usize,
}

struct SimMbuf {
    buf: Vec<u8>,
    off: usize,
    len: usize,
    next: usize,
    nextpkt: usize,
    pkthdr: Option<PktHdr>,
}

#[derive(Default)]
struct Mbufs {
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

fn with<R>(f: impl FnOnce(&mut Mbufs) -> R) -> R {
    if tracked() {
        f(MBUFS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(Mbufs::default))
    } else {
        UNTRACKED.with(|t| f(&mut t.borrow_mut()))
    }
}

fn seg(t: &mut Mbufs, m: mbuf_t) -> &mut SimMbuf {
    if !tracked() {
        // SAFETY: untracked mode trusts the driver: `m` came from `new_mbuf` (a leaked box)
        // and has not been freed. Performance runs only; correctness runs track handles.
        return unsafe { &mut *(m as *mut SimMbuf) };
    }
    t.live.get_mut(&(m as usize)).unwrap_or_else(|| {
        panic!("mbuf {m:p}: not a live mbuf (stale, double-freed or never allocated)")
    })
}

fn new_mbuf(t: &mut Mbufs, capacity: usize, lead: usize, pkthdr: bool) -> usize {
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

fn free_one(t: &mut Mbufs, m: usize) -> usize {
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

/// Segment sizes for a packet of `len` bytes: one segment, or random splits when fragmenting.
fn segment_sizes(len: usize) -> Vec<usize> {
    let fragment = config::booted() && config::config().fragment;
    let mut sizes = Vec::new();
    let mut left = len;
    loop {
        let cap = left.min(MAX_SEGMENT);
        let n = if fragment && cap > 1 {
            config::random_range(1..cap + 1)
        } else {
            cap
        };
        sizes.push(n);
        left -= n;
        if left == 0 {
            break;
        }
    }
    sizes
}

/// Allocates a packet chain holding `data` (used by the fake stack and by the KPI).
pub(crate) fn alloc_chain(len: usize) -> mbuf_t {
    with(|t| {
        let sizes = segment_sizes(len);
        let mut head = 0;
        let mut prev = 0;
        for (i, &n) in sizes.iter().enumerate() {
            let m = new_mbuf(t, n.max(1), 0, i == 0);
            seg(t, m as mbuf_t).len = n;
            if i == 0 {
                head = m;
            } else {
                seg(t, prev as mbuf_t).next = m;
            }
            prev = m;
        }
        seg(t, head as mbuf_t).pkthdr.as_mut().unwrap().len = len;
        head as mbuf_t
    })
}

/// A packet built by the fake stack from `data`.
pub(crate) fn packet_from(data: &[u8]) -> mbuf_t {
    let m = alloc_chain(data.len());
    // SAFETY: a fresh chain of exactly data.len() bytes.
    let rc = unsafe { mbuf_copyback(m, 0, data.len(), data.as_ptr().cast(), MBUF_WAITOK) };
    assert_eq!(rc, 0);
    m
}

/// The bytes of a packet chain, checking `pkthdr.len` = the sum of `m_len`.
pub(crate) fn packet_bytes(m: mbuf_t) -> Vec<u8> {
    with(|t| {
        let mut out = Vec::new();
        let mut cur = m as usize;
        let hdr_len = seg(t, m).pkthdr.as_ref().map(|h| h.len);
        while cur != 0 {
            let mb = seg(t, cur as mbuf_t);
            out.extend_from_slice(&mb.buf[mb.off..mb.off + mb.len]);
            cur = mb.next;
        }
        if let Some(l) = hdr_len {
            assert_eq!(
                l,
                out.len(),
                "mbuf {m:p}: pkthdr.len {l} != sum of m_len {}",
                out.len()
            );
        }
        out
    })
}

/// Checks `pkthdr.len` = the sum of `m_len` over the chain, without copying.
pub(crate) fn check_packet_len(m: mbuf_t) {
    with(|t| {
        let hdr_len = seg(t, m).pkthdr.as_ref().map(|h| h.len);
        let mut sum = 0;
        let mut cur = m as usize;
        while cur != 0 {
            let mb = seg(t, cur as mbuf_t);
            sum += mb.len;
            cur = mb.next;
        }
        if let Some(l) = hdr_len {
            assert_eq!(l, sum, "mbuf {m:p}: pkthdr.len {l} != sum of m_len {sum}");
        }
    })
}

/// `pkthdr.rcvif` of a packet.
pub(crate) fn rcvif(m: mbuf_t) -> usize {
    with(|t| seg(t, m).pkthdr.as_ref().map_or(0, |h| h.rcvif))
}

/// Frees a whole chain (the stack's side).
pub(crate) fn free_chain(m: mbuf_t) {
    mbuf_freem(m);
}

/// Live mbufs (leak accounting).
pub fn live_mbufs() -> usize {
    LIVE.load(Relaxed)
}

/// mbufs allocated since boot.
pub fn mbufs_allocated() -> u64 {
    ALLOCATED.load(Relaxed)
}

// ---- KPI ----

#[no_mangle]
unsafe extern "C" fn mbuf_allocpacket(
    how: c_int,
    packetlen: usize,
    maxchunks: *mut c_uint,
    out: *mut mbuf_t,
) -> errno_t {
    if packetlen == 0 {
        return crate::Errno::EINVAL.0; // xnu bsd/kern/kpi_mbuf.c
    }
    if how == MBUF_DONTWAIT && config::should_fail(Fault::MbufAlloc) {
        // No memory: ENOMEM. ENOBUFS is only for "more than *maxchunks segments" (kpi_mbuf.c).
        return crate::Errno::ENOMEM.0;
    }
    if how == MBUF_WAITOK {
        config::perturb_point(); // may block, never fails
    }
    let m = alloc_chain(packetlen);
    if !maxchunks.is_null() {
        let chunks = with(|t| {
            let mut n = 0;
            let mut cur = m as usize;
            while cur != 0 {
                n += 1;
                cur = seg(t, cur as mbuf_t).next;
            }
            n
        });
        if *maxchunks != 0 && chunks > *maxchunks {
            mbuf_freem(m);
            return crate::Errno::ENOBUFS.0;
        }
        *maxchunks = chunks;
    }
    *out = m;
    0
}

#[no_mangle]
extern "C" fn mbuf_data(m: mbuf_t) -> *mut c_void {
    with(|t| {
        let mb = seg(t, m);
        mb.buf.as_mut_ptr().wrapping_add(mb.off).cast()
    })
}

#[no_mangle]
extern "C" fn mbuf_len(m: mbuf_t) -> usize {
    with(|t| seg(t, m).len)
}

#[no_mangle]
extern "C" fn mbuf_setlen(m: mbuf_t, len: usize) {
    with(|t| {
        let mb = seg(t, m);
        assert!(
            mb.off + len <= mb.buf.len(),
            "mbuf_setlen {m:p}: {len} beyond the buffer"
        );
        mb.len = len;
    })
}

#[no_mangle]
extern "C" fn mbuf_next(m: mbuf_t) -> mbuf_t {
    with(|t| seg(t, m).next as mbuf_t)
}

#[no_mangle]
extern "C" fn mbuf_nextpkt(m: mbuf_t) -> mbuf_t {
    with(|t| seg(t, m).nextpkt as mbuf_t)
}

#[no_mangle]
extern "C" fn mbuf_setnextpkt(m: mbuf_t, next: mbuf_t) {
    with(|t| seg(t, m).nextpkt = next as usize)
}

#[no_mangle]
extern "C" fn mbuf_pkthdr_len(m: mbuf_t) -> usize {
    with(|t| {
        seg(t, m)
            .pkthdr
            .as_ref()
            .unwrap_or_else(|| panic!("mbuf {m:p}: no packet header"))
            .len
    })
}

#[no_mangle]
extern "C" fn mbuf_pkthdr_setlen(m: mbuf_t, len: usize) {
    with(|t| {
        seg(t, m)
            .pkthdr
            .as_mut()
            .unwrap_or_else(|| panic!("mbuf {m:p}: no packet header"))
            .len = len
    })
}

#[no_mangle]
extern "C" fn mbuf_pkthdr_setrcvif(m: mbuf_t, ifp: ifnet_t) -> errno_t {
    with(|t| {
        seg(t, m)
            .pkthdr
            .as_mut()
            .unwrap_or_else(|| panic!("mbuf {m:p}: no packet header"))
            .rcvif = ifp as usize
    });
    0
}

#[no_mangle]
extern "C" fn mbuf_pkthdr_header(m: mbuf_t) -> *mut c_void {
    with(|t| seg(t, m).pkthdr.as_ref().map_or(0, |h| h.header) as *mut c_void)
}

#[no_mangle]
extern "C" fn mbuf_pkthdr_setheader(m: mbuf_t, header: *mut c_void) {
    with(|t| {
        seg(t, m)
            .pkthdr
            .as_mut()
            .unwrap_or_else(|| panic!("mbuf {m:p}: no packet header"))
            .header = header as usize
    })
}

#[no_mangle]
unsafe extern "C" fn mbuf_copydata(
    m: mbuf_t,
    offset: usize,
    length: usize,
    out: *mut c_void,
) -> errno_t {
    let data = packet_data_range(m, offset, length);
    match data {
        Some(bytes) => {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.cast::<u8>(), length);
            0
        }
        None => crate::Errno::EINVAL.0,
    }
}

fn packet_data_range(m: mbuf_t, offset: usize, length: usize) -> Option<Vec<u8>> {
    with(|t| {
        let mut out = Vec::with_capacity(length);
        let mut skip = offset;
        let mut cur = m as usize;
        while cur != 0 && out.len() < length {
            let mb = seg(t, cur as mbuf_t);
            let data = &mb.buf[mb.off..mb.off + mb.len];
            if skip >= data.len() {
                skip -= data.len();
            } else {
                let take = (data.len() - skip).min(length - out.len());
                out.extend_from_slice(&data[skip..skip + take]);
                skip = 0;
            }
            cur = mb.next;
        }
        (out.len() == length).then_some(out)
    })
}

#[no_mangle]
unsafe extern "C" fn mbuf_copyback(
    m: mbuf_t,
    offset: usize,
    length: usize,
    data: *const c_void,
    _how: c_int,
) -> errno_t {
    let src = std::slice::from_raw_parts(data.cast::<u8>(), length);
    with(|t| {
        let mut skip = offset;
        let mut done = 0;
        let mut cur = m as usize;
        while cur != 0 && done < length {
            let mb = seg(t, cur as mbuf_t);
            if skip >= mb.len {
                skip -= mb.len;
            } else {
                let take = (mb.len - skip).min(length - done);
                let start = mb.off + skip;
                mb.buf[start..start + take].copy_from_slice(&src[done..done + take]);
                done += take;
                skip = 0;
            }
            cur = mb.next;
        }
        if done == length {
            0
        } else {
            crate::Errno::EINVAL.0 // the simulator does not grow chains
        }
    })
}

#[no_mangle]
unsafe extern "C" fn mbuf_prepend(mp: *mut mbuf_t, len: usize, how: c_int) -> errno_t {
    let m = *mp;
    let strict = config::booted() && config::config().strict_heads;
    let fits = with(|t| seg(t, m).off >= len);
    if fits && !strict {
        with(|t| {
            let mb = seg(t, m);
            mb.off -= len;
            mb.len += len;
            mb.pkthdr.as_mut().unwrap().len += len;
        });
        return 0;
    }
    if how == MBUF_DONTWAIT && config::should_fail(Fault::MbufAlloc) {
        mbuf_freem(m); // XNU frees the chain when the prepend fails
        *mp = std::ptr::null_mut();
        return crate::Errno::ENOMEM.0;
    }
    // A new head with some leading space of its own; the packet header moves to it.
    let head = with(|t| {
        let old = seg(t, m);
        let mut hdr = old
            .pkthdr
            .take()
            .unwrap_or_else(|| panic!("mbuf_prepend {m:p}: no packet header"));
        hdr.len += len;
        let h = new_mbuf(t, len, 64, true);
        let new = seg(t, h as mbuf_t);
        new.len = len;
        new.next = m as usize;
        new.pkthdr = Some(hdr);
        h
    });
    *mp = head as mbuf_t;
    0
}

#[no_mangle]
extern "C" fn mbuf_adj(m: mbuf_t, len: c_int) {
    assert!(
        len >= 0,
        "mbuf_adj: trimming from the tail is not simulated"
    );
    with(|t| {
        let mut left = len as usize;
        let mut cur = m as usize;
        while cur != 0 && left > 0 {
            let mb = seg(t, cur as mbuf_t);
            let take = left.min(mb.len);
            mb.off += take;
            mb.len -= take;
            left -= take;
            cur = mb.next;
        }
        let trimmed = len as usize - left;
        if let Some(h) = seg(t, m).pkthdr.as_mut() {
            h.len -= trimmed;
        }
    })
}

#[no_mangle]
extern "C" fn mbuf_freem(m: mbuf_t) {
    if m.is_null() {
        return;
    }
    with(|t| {
        let mut cur = m as usize;
        while cur != 0 {
            cur = free_one(t, cur);
        }
    })
}

#[no_mangle]
extern "C" fn mbuf_free(m: mbuf_t) -> mbuf_t {
    with(|t| free_one(t, m as usize) as mbuf_t)
}
