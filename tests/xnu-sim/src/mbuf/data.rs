//! Data access and reshaping (xnu bsd/kern/kpi_mbuf.c): each segment's data window and links,
//! copies across a chain (`mbuf_copydata`, `mbuf_copyback`), and prepending and trimming
//! (`mbuf_prepend`, `mbuf_adj` over bsd/kern/uipc_mbuf.c `m_prepend_2`, `m_adj`).

use super::alloc::mbuf_freem;
use super::store::{new_mbuf, seg, with};
use super::{MCLBYTES, MINCLSIZE, MLEN};
use crate::abi::*;
use crate::config::{self, Fault};
use std::ffi::{c_int, c_void};

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
            // SAFETY: the KPI contract: `out` has `length` writable bytes; `bytes` is the
            // simulator's own copy of exactly `length` bytes, so they cannot overlap.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.cast::<u8>(), length) };
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
    how: mbuf_how_t,
) -> errno_t {
    if m.is_null() || length == 0 || data.is_null() {
        return crate::Errno::EINVAL.0;
    }
    // SAFETY: checked non-NULL above; the KPI contract: `data` has `length` readable bytes,
    // which the driver does not change during the call.
    let src = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), length) };
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
unsafe extern "C" fn mbuf_prepend(mp: *mut mbuf_t, len: usize, how: mbuf_how_t) -> errno_t {
    // SAFETY: the KPI contract: `mp` points to the caller's chain head, read and written back.
    let m = unsafe { *mp };
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
                       // SAFETY: as above.
        unsafe { *mp = std::ptr::null_mut() };
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
    // SAFETY: as above.
    unsafe { *mp = head as mbuf_t };
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
