//! Owned mbuf packet chains (xnu bsd/sys/kpi_mbuf.h).
//!
//! An [`Mbuf`] owns one packet: a chain linked by `m_next`. Dropping it frees the chain, so
//! every path either hands a packet on ([`Mbuf::into_raw`]) or frees it exactly once. Data is
//! never assumed contiguous: the simulated kernel fragments every chain at random.

use super::sys;
use super::uio::Uio;
use crate::errno::{check, Errno};
use core::ptr::NonNull;

/// One packet, as a chain of mbufs, owned by the driver.
pub struct Mbuf(NonNull<sys::__mbuf>);

// SAFETY: an mbuf chain has a single owner and may move between threads.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Allocates a packet chain of exactly `len` data bytes without sleeping
    /// (`MBUF_DONTWAIT`); `ENOBUFS` when the kernel has none.
    pub fn alloc_packet(len: usize) -> Result<Mbuf, Errno> {
        let mut m: sys::mbuf_t = core::ptr::null_mut();
        // SAFETY: `m` is a valid out-pointer; a NULL maxchunks means "no limit".
        let rc = unsafe {
            sys::mbuf_allocpacket(sys::MBUF_DONTWAIT, len, core::ptr::null_mut(), &mut m)
        };
        if rc != 0 {
            return Err(Errno::ENOBUFS);
        }
        let m = Mbuf(NonNull::new(m).ok_or(Errno::ENOBUFS)?);
        // XNU sets m_len on each segment so that they sum to `len`; pin it.
        // SAFETY: `m` is a packet-header mbuf we own.
        unsafe { sys::mbuf_pkthdr_setlen(m.raw(), len) };
        Ok(m)
    }

    /// Takes ownership of a packet the kernel handed to the driver.
    ///
    /// # Safety
    /// `m` must be a valid packet-header mbuf chain that nobody else will use or free.
    pub unsafe fn from_raw(m: sys::mbuf_t) -> Option<Mbuf> {
        NonNull::new(m).map(Mbuf)
    }

    /// Gives up ownership (the receiver frees it).
    pub fn into_raw(self) -> sys::mbuf_t {
        let m = self.0.as_ptr();
        core::mem::forget(self);
        m
    }

    pub(super) fn raw(&self) -> sys::mbuf_t {
        self.0.as_ptr()
    }

    /// The packet length recorded in the packet header.
    pub fn len(&self) -> usize {
        // SAFETY: we own a packet-header mbuf.
        unsafe { sys::mbuf_pkthdr_len(self.raw()) }
    }

    /// Whether the packet has no data.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` on each segment's data, in order, as a mutable slice.
    fn for_each_segment(
        &mut self,
        mut f: impl FnMut(&mut [u8]) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        let mut seg = self.raw();
        while !seg.is_null() {
            // SAFETY: `seg` is a segment of the chain we own; mbuf_data/mbuf_len describe its
            // initialised data, which nobody else accesses while we hold `&mut self`.
            let data = unsafe {
                let len = sys::mbuf_len(seg);
                let ptr = sys::mbuf_data(seg).cast::<u8>();
                if len == 0 || ptr.is_null() {
                    &mut [][..]
                } else {
                    core::slice::from_raw_parts_mut(ptr, len)
                }
            };
            f(data)?;
            // SAFETY: as above.
            seg = unsafe { sys::mbuf_next(seg) };
        }
        Ok(())
    }

    /// Fills the whole packet from `uio` (one copy, straight into the chain).
    pub fn fill_from(&mut self, uio: &mut Uio<'_>) -> Result<(), Errno> {
        self.for_each_segment(|seg| uio.copy_in(seg))
    }

    /// Copies the packet, from `offset`, out to `uio` until either runs out. Returns the
    /// number of packet bytes copied.
    pub fn copy_out(&mut self, mut offset: usize, uio: &mut Uio<'_>) -> Result<usize, Errno> {
        let mut copied = 0;
        self.for_each_segment(|seg| {
            if offset >= seg.len() {
                offset -= seg.len();
                return Ok(());
            }
            let want = (seg.len() - offset).min(uio.resid());
            if want > 0 {
                uio.copy_out(&seg[offset..offset + want])?;
                copied += want;
            }
            offset = 0;
            Ok(())
        })?;
        Ok(copied)
    }

    /// The first data byte, read in place from the first non-empty segment (no copy call).
    pub fn first_byte(&self) -> Option<u8> {
        let mut seg = self.raw();
        while !seg.is_null() {
            // SAFETY: `seg` is a segment of the chain we own; when its length is non-zero its
            // data pointer addresses at least one initialised byte.
            unsafe {
                if sys::mbuf_len(seg) > 0 {
                    return Some(*sys::mbuf_data(seg).cast::<u8>());
                }
                seg = sys::mbuf_next(seg);
            }
        }
        None
    }

    /// Copies `out.len()` bytes starting at `offset`.
    pub fn copy_data(&self, offset: usize, out: &mut [u8]) -> Result<(), Errno> {
        // SAFETY: `out` is writable for its length; the chain is ours.
        check(unsafe { sys::mbuf_copydata(self.raw(), offset, out.len(), out.as_mut_ptr().cast()) })
    }

    /// Records the receiving interface (`pkthdr.rcvif`).
    pub fn set_rcvif(&mut self, ifp: &super::ifnet::Ifnet) {
        // SAFETY: both handles are live; the call only stores the pointer.
        let _ = unsafe { sys::mbuf_pkthdr_setrcvif(self.raw(), ifp.raw()) };
    }

    /// Points the packet header at the start of the data (the IP header).
    pub fn set_header_to_data(&mut self) {
        // SAFETY: the data pointer belongs to the first segment of our chain.
        unsafe { sys::mbuf_pkthdr_setheader(self.raw(), sys::mbuf_data(self.raw())) };
    }

    /// Prepends `len` contiguous bytes at the front (`mbuf_prepend`, which may return a new
    /// head). On failure the kernel has freed the chain.
    pub fn prepend(self, len: usize) -> Result<Mbuf, Errno> {
        let mut m = self.into_raw();
        // SAFETY: `m` is our chain; on error the KPI frees it and we drop the handle.
        let rc = unsafe { sys::mbuf_prepend(&mut m, len, sys::MBUF_DONTWAIT) };
        if rc != 0 {
            return Err(Errno::ENOBUFS);
        }
        NonNull::new(m).map(Mbuf).ok_or(Errno::ENOBUFS)
    }

    /// The first segment's data, where a prepended header is contiguous.
    pub fn head_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `for_each_segment`, for the first segment only.
        unsafe {
            let len = sys::mbuf_len(self.raw());
            let ptr = sys::mbuf_data(self.raw()).cast::<u8>();
            if len == 0 || ptr.is_null() {
                &mut []
            } else {
                core::slice::from_raw_parts_mut(ptr, len)
            }
        }
    }

    /// Removes `len` bytes from the front of the packet (`mbuf_adj`).
    pub fn trim_front(&mut self, len: usize) {
        // SAFETY: our chain; mbuf_adj adjusts lengths in place and updates pkthdr.len.
        unsafe { sys::mbuf_adj(self.raw(), len as i32) };
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the chain and free it exactly once.
        unsafe { sys::mbuf_freem(self.raw()) };
    }
}
