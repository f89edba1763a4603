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

/// XNU's mbuf geometry (bsd/sys/mbuf.h: `MSIZE` 256, so `MLEN` 224; `MCLBYTES` 2 KiB,
/// `MBIGCLBYTES` 4 KiB, `M16KCLBYTES` 16 KiB). `MHLEN` is `MLEN` less `sizeof(struct pkthdr)`,
/// which grows from release to release; the simulator takes a smaller value than any release
/// has, so more packets take the two-mbuf path: stricter, never kinder.
pub const MLEN: usize = 224;
/// See [`MLEN`].
pub const MHLEN: usize = 96;
/// `MINCLSIZE`: the largest length kept in plain mbufs (`MHLEN + MLEN`).
pub const MINCLSIZE: usize = MHLEN + MLEN;
/// A 2 KiB cluster.
pub const MCLBYTES: usize = 2048;
/// A 4 KiB ("big") cluster.
pub const MBIGCLBYTES: usize = 4096;
/// A 16 KiB jumbo cluster.
pub const M16KCLBYTES: usize = 16 * 1024;

/// One `m_tag` (bsd/kern/uipc_mbuf.c `m_tag_create`): its (id, type) and its data, which stays
/// at one address until the packet header is freed.
struct Tag {
    id: u32,
    kind: u16,
    data: Box<[u8]>,
}

struct PktHdr {
    len: usize,
    rcvif: usize,
    header: usize,
    /// The packet's tags (`m_tag_prepend`); they go with the packet header and are freed with it.
    tags: Vec<Tag>,
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

/// The capacity of each segment `m_allocpacket_internal` (bsd/kern/uipc_mbuf.c) gives a packet
/// of `len` bytes when the caller allows at most `max` segments (0: no limit), or the number of
/// segments it would need when that is more than `max`.
///
/// XNU picks one buffer size: the length itself up to `MINCLSIZE` (one mbuf up to `MHLEN`, else
/// two, or one 2 KiB cluster when only one segment is allowed), a 2 KiB cluster up to 2 KiB, a
/// 4 KiB cluster up to 4 KiB, and 16 KiB clusters beyond; the residue of a longer packet goes
/// into the smallest cluster that holds it.
pub fn xnu_segment_capacities(len: usize, max: u32) -> Result<Vec<usize>, u32> {
    let (bufsize, nsegs) = if len <= MINCLSIZE {
        if len <= MHLEN {
            (MHLEN, 1)
        } else if max == 1 {
            (MCLBYTES, 1)
        } else {
            return check_max(vec![MHLEN, MLEN], max);
        }
    } else if len > MCLBYTES {
        let size = if len <= MBIGCLBYTES {
            MBIGCLBYTES
        } else {
            M16KCLBYTES
        };
        (size, len.div_ceil(size))
    } else {
        (MCLBYTES, 1)
    };
    let mut caps = vec![bufsize; nsegs];
    let resid = if len > bufsize { len % bufsize } else { 0 };
    if resid > 0 {
        *caps.last_mut().expect("at least one segment") = if resid > MBIGCLBYTES {
            M16KCLBYTES
        } else if resid > MCLBYTES {
            MBIGCLBYTES
        } else {
            MCLBYTES
        };
    }
    check_max(caps, max)
}

fn check_max(caps: Vec<usize>, max: u32) -> Result<Vec<usize>, u32> {
    let n = caps.len() as u32;
    if max != 0 && n > max {
        Err(n)
    } else {
        Ok(caps)
    }
}

/// The segment capacities the simulator hands out for a packet of `len` bytes: XNU's, or, with
/// fragmentation on and no segment limit, random splits whose capacities add up to exactly
/// `len` (stricter: every segment must be filled to its end). The first segment keeps at least
/// `MHLEN` bytes (or the whole packet), as every XNU packet header mbuf does.
fn segment_capacities(len: usize, max: u32) -> Result<Vec<usize>, u32> {
    let fragment = config::booted() && config::config().fragment;
    if !fragment || max != 0 {
        return xnu_segment_capacities(len, max);
    }
    let first_min = len.min(MHLEN);
    let mut caps = vec![config::random_range(first_min..len + 1)];
    let mut left = len - caps[0];
    while left > 0 {
        let n = config::random_range(1..left.min(M16KCLBYTES) + 1);
        caps.push(n);
        left -= n;
    }
    Ok(caps)
}

/// Allocates an empty packet chain with these segment capacities: every `m_len` and the
/// packet header length are 0 (`MBUF_INIT`).
fn alloc_empty(caps: &[usize]) -> mbuf_t {
    with(|t| {
        let mut head = 0;
        let mut prev = 0;
        for (i, &cap) in caps.iter().enumerate() {
            let m = new_mbuf(t, cap, 0, i == 0);
            if i == 0 {
                head = m;
            } else {
                seg(t, prev as mbuf_t).next = m;
            }
            prev = m;
        }
        head as mbuf_t
    })
}

/// A packet built by the fake stack from `data`: each segment filled to its capacity, the
/// lengths set (what XNU's own producers, such as `m_devget`, leave behind).
pub(crate) fn packet_from(data: &[u8]) -> mbuf_t {
    let caps = segment_capacities(data.len().max(1), 0).expect("no segment limit");
    let m = alloc_empty(&caps);
    with(|t| {
        let mut cur = m as usize;
        let mut at = 0;
        while cur != 0 {
            let mb = seg(t, cur as mbuf_t);
            let n = mb.buf.len().min(data.len() - at);
            mb.buf[..n].copy_from_slice(&data[at..at + n]);
            mb.len = n;
            at += n;
            cur = mb.next;
        }
        seg(t, m).pkthdr.as_mut().expect("packet header").len = data.len();
    });
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

/// `mbuf_allocpacket` (bsd/kern/kpi_mbuf.c `mbuf_allocpacket` → bsd/kern/uipc_mbuf.c
/// `m_allocpacket_internal`): a chain whose segments all have `m_len` 0 and whose packet header
/// length is 0 (`MBUF_INIT`); the caller fills each segment up to `mbuf_maxlen` and sets the
/// lengths. `EINVAL` for length 0; `ENOBUFS` when more than a non-zero `*maxchunks` segments
/// are needed; `ENOMEM` when a `MBUF_DONTWAIT` allocation fails. On success a non-NULL
/// `maxchunks` receives the number of segments.
#[no_mangle]
unsafe extern "C" fn mbuf_allocpacket(
    how: c_int,
    packetlen: usize,
    maxchunks: *mut c_uint,
    out: *mut mbuf_t,
) -> errno_t {
    if packetlen == 0 {
        return crate::Errno::EINVAL.0;
    }
    let max = if maxchunks.is_null() { 0 } else { *maxchunks };
    let Ok(caps) = segment_capacities(packetlen, max) else {
        return crate::Errno::ENOBUFS.0;
    };
    if how == MBUF_DONTWAIT && config::should_fail(Fault::MbufAlloc) {
        return crate::Errno::ENOMEM.0;
    }
    if how == MBUF_WAITOK {
        config::perturb_point(); // may block, never fails
    }
    if !maxchunks.is_null() {
        *maxchunks = caps.len() as c_uint;
    }
    *out = alloc_empty(&caps);
    0
}

/// `mbuf_maxlen` (bsd/kern/kpi_mbuf.c): the segment's buffer size from the start of its
/// storage (a cluster's size, else `MHLEN` or `MLEN`).
#[no_mangle]
extern "C" fn mbuf_maxlen(m: mbuf_t) -> usize {
    with(|t| seg(t, m).buf.len())
}

/// `mbuf_data` (bsd/kern/kpi_mbuf.c): the address of the segment's data. Stricter than XNU: a stale
/// handle panics, and freed storage is poisoned and quarantined.
#[no_mangle]
extern "C" fn mbuf_data(m: mbuf_t) -> *mut c_void {
    with(|t| {
        let mb = seg(t, m);
        mb.buf.as_mut_ptr().wrapping_add(mb.off).cast()
    })
}

/// `mbuf_len` (bsd/kern/kpi_mbuf.c): the segment's data length. A handle that is not a live mbuf
/// panics.
#[no_mangle]
extern "C" fn mbuf_len(m: mbuf_t) -> usize {
    with(|t| seg(t, m).len)
}

/// `mbuf_setlen` (bsd/kern/kpi_mbuf.c): sets the segment's data length. Stricter than XNU: panics
/// when the length runs past the segment's storage.
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

/// `mbuf_next` (bsd/kern/kpi_mbuf.c): the next segment of the chain; stale handles panic.
#[no_mangle]
extern "C" fn mbuf_next(m: mbuf_t) -> mbuf_t {
    with(|t| seg(t, m).next as mbuf_t)
}

/// `mbuf_nextpkt` (bsd/kern/kpi_mbuf.c): the next packet of a packet list; stale handles panic.
#[no_mangle]
extern "C" fn mbuf_nextpkt(m: mbuf_t) -> mbuf_t {
    with(|t| seg(t, m).nextpkt as mbuf_t)
}

/// `mbuf_setnextpkt` (bsd/kern/kpi_mbuf.c): sets the next-packet link; stale handles panic.
#[no_mangle]
extern "C" fn mbuf_setnextpkt(m: mbuf_t, next: mbuf_t) {
    with(|t| seg(t, m).nextpkt = next as usize)
}

/// `mbuf_pkthdr_len` (bsd/kern/kpi_mbuf.c): the packet header's length. Stricter than XNU: an
/// mbuf without a packet header panics.
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

/// `mbuf_pkthdr_setlen` (bsd/kern/kpi_mbuf.c): sets the packet header's length. Stricter than
/// XNU: an mbuf without a packet header panics.
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

/// `mbuf_pkthdr_setrcvif` (bsd/kern/kpi_mbuf.c): stores the receiving interface and returns 0.
/// Stricter than XNU: an mbuf without a packet header panics.
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

/// `mbuf_pkthdr_header` (bsd/kern/kpi_mbuf.c): the stored frame-header pointer; NULL for an mbuf
/// without a packet header; stale handles panic.
#[no_mangle]
extern "C" fn mbuf_pkthdr_header(m: mbuf_t) -> *mut c_void {
    with(|t| seg(t, m).pkthdr.as_ref().map_or(0, |h| h.header) as *mut c_void)
}

/// `mbuf_pkthdr_setheader` (bsd/kern/kpi_mbuf.c): stores the frame-header pointer. Stricter
/// than XNU: an mbuf without a packet header panics.
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

/// The first id `mbuf_tag_id_find` hands out (bsd/net/net_str_id.c: ids are numbered in the
/// order strings are first seen, from a first id above the kernel's own).
const MTAG_FIRST_ID: u32 = 5;

/// The strings given to `mbuf_tag_id_find`, in the order their ids were handed out.
static TAG_IDS: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// `mbuf_tag_id_find` (bsd/kern/kpi_mbuf.c → bsd/net/net_str_id.c `net_str_id_find_internal`):
/// the same string always gives the same id, a new string the next id. `EINVAL` for NULL
/// arguments.
#[no_mangle]
unsafe extern "C" fn mbuf_tag_id_find(string: *const std::ffi::c_char, out: *mut u32) -> errno_t {
    if string.is_null() || out.is_null() {
        return crate::Errno::EINVAL.0;
    }
    let name = std::ffi::CStr::from_ptr(string).to_bytes().to_vec();
    let mut ids = TAG_IDS.lock().unwrap_or_else(|e| e.into_inner());
    let index = match ids.iter().position(|s| *s == name) {
        Some(i) => i,
        None => {
            ids.push(name);
            ids.len() - 1
        }
    };
    *out = MTAG_FIRST_ID + index as u32;
    0
}

/// Whether `id` was handed out by `mbuf_tag_id_find`.
fn valid_tag_id(id: u32) -> bool {
    let ids = TAG_IDS.lock().unwrap_or_else(|e| e.into_inner());
    id >= MTAG_FIRST_ID && ((id - MTAG_FIRST_ID) as usize) < ids.len()
}

/// `mbuf_tag_allocate` (bsd/kern/kpi_mbuf.c): attaches `length` bytes of tag data of (id, type)
/// to a packet header mbuf and returns its address in `*data_p`; the tag is freed with the
/// packet. `EINVAL` for a NULL or non-header mbuf, an id never handed out, a length of 0 or
/// above 0xffff, or a NULL `data_p`; `EEXIST` when the packet already has that (id, type);
/// `EWOULDBLOCK` when a `MBUF_DONTWAIT` allocation fails (`ENOMEM` for `MBUF_WAITOK`, which the
/// simulator never fails).
#[no_mangle]
unsafe extern "C" fn mbuf_tag_allocate(
    m: mbuf_t,
    id: u32,
    kind: u16,
    length: usize,
    how: c_int,
    data_p: *mut *mut c_void,
) -> errno_t {
    if !data_p.is_null() {
        *data_p = std::ptr::null_mut();
    }
    if m.is_null() || !valid_tag_id(id) || !(1..=0xffff).contains(&length) || data_p.is_null() {
        return crate::Errno::EINVAL.0;
    }
    if how == MBUF_DONTWAIT && config::should_fail(Fault::MbufAlloc) {
        return crate::Errno::EAGAIN.0;
    }
    with(|t| {
        let Some(hdr) = seg(t, m).pkthdr.as_mut() else {
            return crate::Errno::EINVAL.0;
        };
        if hdr.tags.iter().any(|tag| tag.id == id && tag.kind == kind) {
            return crate::Errno::EEXIST.0;
        }
        let mut data = vec![0u8; length].into_boxed_slice();
        *data_p = data.as_mut_ptr().cast();
        hdr.tags.insert(0, Tag { id, kind, data });
        0
    })
}

/// `mbuf_tag_find` (bsd/kern/kpi_mbuf.c → `m_tag_locate`): the data and length of the packet's
/// tag of (id, type). `EINVAL` for a NULL or non-header mbuf, an id never handed out or NULL
/// out-pointers; `ENOENT` when the packet has no such tag.
#[no_mangle]
unsafe extern "C" fn mbuf_tag_find(
    m: mbuf_t,
    id: u32,
    kind: u16,
    length: *mut usize,
    data_p: *mut *mut c_void,
) -> errno_t {
    if length.is_null() || data_p.is_null() {
        return crate::Errno::EINVAL.0;
    }
    *length = 0;
    *data_p = std::ptr::null_mut();
    if m.is_null() || !valid_tag_id(id) {
        return crate::Errno::EINVAL.0;
    }
    with(|t| {
        let Some(hdr) = seg(t, m).pkthdr.as_mut() else {
            return crate::Errno::EINVAL.0;
        };
        match hdr
            .tags
            .iter_mut()
            .find(|tag| tag.id == id && tag.kind == kind)
        {
            Some(tag) => {
                *length = tag.data.len();
                *data_p = tag.data.as_mut_ptr().cast();
                0
            }
            None => crate::Errno::ENOENT.0,
        }
    })
}

/// How many tags the packet `m` carries (for tests).
pub fn tag_count(m: mbuf_t) -> usize {
    with(|t| seg(t, m).pkthdr.as_ref().map_or(0, |h| h.tags.len()))
}

/// `mbuf_copydata` (bsd/kern/kpi_mbuf.c): copies a byte range across segments; `EINVAL` (and
/// nothing copied) when the chain ends before the range does. Stale handles panic.
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

/// `mbuf_copyback` (bsd/kern/kpi_mbuf.c): copies `length` bytes in at `offset`. As in XNU,
/// only the **last** mbuf of the chain grows into its trailing space, and further mbufs are
/// appended as needed (zero-filled up to the offset); `pkthdr.len` grows to the bytes covered.
/// `EINVAL` for a NULL chain or data, or a length of 0; `ENOBUFS` when an append fails.
#[no_mangle]
unsafe extern "C" fn mbuf_copyback(
    m: mbuf_t,
    offset: usize,
    length: usize,
    data: *const c_void,
    how: c_int,
) -> errno_t {
    if m.is_null() || length == 0 || data.is_null() {
        return crate::Errno::EINVAL.0;
    }
    let src = std::slice::from_raw_parts(data.cast::<u8>(), length);
    with(|t| {
        let head = m as usize;
        let mut cur = head;
        let mut off = offset;
        let mut len = length;
        let mut total = 0;
        let mut done = 0;
        let mut result = 0;
        // Skip whole segments before the offset, appending zeroed ones past the end.
        loop {
            let mlen = seg(t, cur as mbuf_t).len;
            if off <= mlen {
                break;
            }
            off -= mlen;
            total += mlen;
            if seg(t, cur as mbuf_t).next == 0 {
                if how == MBUF_DONTWAIT && config::should_fail(Fault::MbufAlloc) {
                    result = crate::Errno::ENOBUFS.0;
                    break;
                }
                let n = new_mbuf(t, MLEN, 0, false);
                let nb = seg(t, n as mbuf_t);
                nb.buf.fill(0);
                nb.len = MLEN.min(len + off);
                seg(t, cur as mbuf_t).next = n;
            }
            cur = seg(t, cur as mbuf_t).next;
        }
        while result == 0 && len > 0 {
            let mb = seg(t, cur as mbuf_t);
            let mut mlen = mb.len.saturating_sub(off).min(len);
            let trailing = mb.buf.len() - (mb.off + mb.len);
            if mlen < len && mb.next == 0 && trailing > 0 {
                let grow = trailing.min(len - mlen);
                mlen += grow;
                mb.len += grow;
            }
            let start = mb.off + off;
            mb.buf[start..start + mlen].copy_from_slice(&src[done..done + mlen]);
            done += mlen;
            len -= mlen;
            total += mlen + off;
            off = 0;
            if len == 0 {
                break;
            }
            if mb.next == 0 {
                if how == MBUF_DONTWAIT && config::should_fail(Fault::MbufAlloc) {
                    result = crate::Errno::ENOBUFS.0;
                    break;
                }
                let cap = if len > MINCLSIZE { MCLBYTES } else { MLEN };
                let n = new_mbuf(t, cap, 0, false);
                seg(t, n as mbuf_t).len = cap.min(len);
                seg(t, cur as mbuf_t).next = n;
            }
            cur = seg(t, cur as mbuf_t).next;
        }
        if let Some(h) = seg(t, head as mbuf_t).pkthdr.as_mut() {
            h.len = h.len.max(total);
        }
        result
    })
}

/// `mbuf_prepend` (bsd/kern/kpi_mbuf.c → bsd/kern/uipc_mbuf.c `m_prepend_2`): in place when the
/// head has leading room, else a new head that takes over the packet header; under strict heads
/// always a new head. A failed `MBUF_DONTWAIT` allocation frees the chain, sets `*mp` to NULL and
/// returns `ENOMEM`.
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

/// `mbuf_adj` (bsd/kern/kpi_mbuf.c → bsd/kern/uipc_mbuf.c `m_adj`): trims `len` bytes from the
/// front across segments and lowers the packet length. Trimming from the tail (negative `len`)
/// panics.
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

/// `mbuf_freem` (bsd/kern/kpi_mbuf.c → bsd/kern/uipc_mbuf.c `m_freem`): frees the chain along
/// `m_next`, tags freed with the packet header; NULL is accepted. Stricter than XNU: freed storage
/// is poisoned and quarantined, and a double free panics every time.
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

/// `mbuf_free` (bsd/kern/kpi_mbuf.c → bsd/kern/uipc_mbuf.c `m_free`): frees one mbuf and returns
/// its successor. Stricter than XNU: poisoning, quarantine, and a panic for a handle that is not
/// live.
#[no_mangle]
extern "C" fn mbuf_free(m: mbuf_t) -> mbuf_t {
    with(|t| free_one(t, m as usize) as mbuf_t)
}
