//! Packet tags (xnu bsd/kern/kpi_mbuf.c `mbuf_tag_*` over bsd/kern/uipc_mbuf.c `m_tag_*`):
//! data of a given (id, type) that travels with the packet header and is freed with it.

use super::store::{seg, with};
use crate::abi::*;
use crate::config::{self, Fault};
use std::ffi::c_void;
use std::sync::Mutex;

/// One `m_tag` (bsd/kern/uipc_mbuf.c `m_tag_create`): its (id, type) and its data, which stays
/// at one address until the packet header is freed.
pub(super) struct Tag {
    id: u32,
    kind: u16,
    data: Box<[u8]>,
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
    // SAFETY: checked non-NULL above; the KPI requires a NUL-terminated string.
    let name = unsafe { std::ffi::CStr::from_ptr(string) }
        .to_bytes()
        .to_vec();
    let mut ids = TAG_IDS.lock().unwrap_or_else(|e| e.into_inner());
    let index = match ids.iter().position(|s| *s == name) {
        Some(i) => i,
        None => {
            ids.push(name);
            ids.len() - 1
        }
    };
    // SAFETY: checked non-NULL above; the KPI contract: `out` is writable.
    unsafe { *out = MTAG_FIRST_ID + index as u32 };
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
    how: mbuf_how_t,
    data_p: *mut *mut c_void,
) -> errno_t {
    if !data_p.is_null() {
        // SAFETY: the KPI contract: a non-NULL `data_p` is writable.
        unsafe { *data_p = std::ptr::null_mut() };
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
        // SAFETY: checked non-NULL above; writable by the KPI contract.
        unsafe { *data_p = data.as_mut_ptr().cast() };
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
    // SAFETY: both checked non-NULL above; the KPI contract: both are writable.
    unsafe {
        *length = 0;
        *data_p = std::ptr::null_mut();
    }
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
                // SAFETY: as above.
                unsafe {
                    *length = tag.data.len();
                    *data_p = tag.data.as_mut_ptr().cast();
                }
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
