//! Allocation and geometry (xnu bsd/kern/kpi_mbuf.c `mbuf_allocpacket`, `mbuf_maxlen`,
//! `mbuf_freem`, `mbuf_free` over bsd/kern/uipc_mbuf.c): how many segments of which size a
//! packet gets, XNU's rule or random fragmentation, and freeing chains.

use super::store::{free_one, new_mbuf, seg, with};
use crate::abi::*;
use crate::config::{self, Fault};
use std::ffi::c_uint;

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
pub(super) fn alloc_empty(caps: &[usize]) -> mbuf_t {
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

/// Frees a whole chain (the stack's side).
pub(crate) fn free_chain(m: mbuf_t) {
    mbuf_freem(m);
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
    how: mbuf_how_t,
    packetlen: usize,
    maxchunks: *mut c_uint,
    out: *mut mbuf_t,
) -> errno_t {
    if packetlen == 0 {
        return crate::Errno::EINVAL.0;
    }
    let max = if maxchunks.is_null() {
        0
    } else {
        // SAFETY: the KPI contract: a non-NULL `maxchunks` points to the caller's limit.
        unsafe { *maxchunks }
    };
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
        // SAFETY: as above; the same pointer receives the segment count.
        unsafe { *maxchunks = caps.len() as c_uint };
    }
    let m = alloc_empty(&caps);
    // SAFETY: the KPI contract: `out` points to writable storage for the chain.
    unsafe { *out = m };
    0
}

/// `mbuf_maxlen` (bsd/kern/kpi_mbuf.c): the segment's buffer size from the start of its
/// storage (a cluster's size, else `MHLEN` or `MLEN`).
#[no_mangle]
extern "C" fn mbuf_maxlen(m: mbuf_t) -> usize {
    with(|t| seg(t, m).buf.len())
}

/// `mbuf_freem` (bsd/kern/kpi_mbuf.c → bsd/kern/uipc_mbuf.c `m_freem`): frees the chain along
/// `m_next`, tags freed with the packet header; NULL is accepted. Stricter than XNU: freed storage
/// is poisoned and quarantined, and a double free panics every time.
#[no_mangle]
pub(super) extern "C" fn mbuf_freem(m: mbuf_t) {
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
