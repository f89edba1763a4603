//! Owned mbuf packet chains (xnu bsd/sys/kpi_mbuf.h).
//!
//! An [`Mbuf`] owns one packet: a chain linked by `m_next`. Dropping it frees the chain, so
//! every path either hands a packet on ([`Mbuf::into_raw`]) or frees it exactly once. Data is
//! never assumed contiguous: the simulated kernel fragments every chain at random.

use super::errno::{check, Errno};
use super::ifnet::Ifnet;
use super::sys;
use super::uio::{FromUser, ToUser, Uio};
use core::ffi::CStr;
use core::ptr::NonNull;

/// The largest packet asked for in one segment: a 2 KiB cluster (`MCLBYTES`). XNU gives a
/// packet up to this size one mbuf or one cluster when `*maxchunks` is 1.
const ONE_SEGMENT: usize = 2048;

/// One packet, as a chain of mbufs, owned by the driver.
pub struct Mbuf(NonNull<sys::__mbuf>);

// SAFETY: an mbuf chain has a single owner and may move between threads.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Builds a packet of `front` bytes followed by everything left in `uio`, copying the
    /// user's bytes once, straight into the chain (`MBUF_DONTWAIT`). The first `front` bytes
    /// lie in the first segment and are left for the caller to write ([`Mbuf::set_frame_header`]).
    ///
    /// XNU's `mbuf_allocpacket` returns every segment with `m_len` 0 and `pkthdr.len` 0
    /// (`m_allocpacket_internal`, `MBUF_INIT`): each segment is filled up to `mbuf_maxlen`,
    /// then its length and the packet length are set here. A packet that fits a 2 KiB cluster
    /// is asked for in one segment, so up to 1500 bytes of IP plus the 4-byte family word
    /// never straddle two mbufs. `ENOBUFS` when the kernel has no mbufs; a copy fault's error
    /// (`EFAULT`) with the chain freed.
    pub fn from_uio(front: usize, uio: &mut Uio<'_, FromUser>) -> Result<Mbuf, Errno> {
        let total = front + uio.resid();
        let mut segments: core::ffi::c_uint = if total <= ONE_SEGMENT { 1 } else { 0 };
        let mut m: sys::mbuf_t = core::ptr::null_mut();
        // SAFETY: valid out-pointers; `segments` caps the chain when non-zero.
        let rc = unsafe { sys::mbuf_allocpacket(sys::MBUF_DONTWAIT, total, &mut segments, &mut m) };
        if rc != 0 {
            return Err(Errno::ENOBUFS);
        }
        let packet = Mbuf(NonNull::new(m).ok_or(Errno::ENOBUFS)?);
        let mut seg = packet.raw();
        let (mut skip, mut left) = (front, total);
        while !seg.is_null() && left > 0 {
            // SAFETY: `seg` is a fresh segment of our chain: its data starts at its storage,
            // which holds `mbuf_maxlen` bytes that nobody else touches.
            let room = unsafe {
                let n = sys::mbuf_maxlen(seg).min(left);
                core::slice::from_raw_parts_mut(sys::mbuf_data(seg).cast::<u8>(), n)
            };
            if room.len() < skip {
                return Err(Errno::ENOBUFS); // the caller's front must be contiguous
            }
            uio.copy_in(&mut room[skip..])?;
            left -= room.len();
            skip = 0;
            // SAFETY: as above; the segment now holds `room.len()` bytes.
            unsafe {
                sys::mbuf_setlen(seg, room.len());
                seg = sys::mbuf_next(seg);
            }
        }
        if left > 0 {
            return Err(Errno::ENOBUFS);
        }
        // SAFETY: our packet header mbuf; the segments' lengths add up to `total`.
        unsafe { sys::mbuf_pkthdr_setlen(packet.raw(), total) };
        Ok(packet)
    }

    /// Takes ownership of a packet the kernel handed to the driver.
    ///
    /// # Safety
    /// `m` must be NULL or a valid packet-header mbuf chain that nobody else will use or free.
    pub(super) unsafe fn from_raw(m: sys::mbuf_t) -> Option<Mbuf> {
        NonNull::new(m).map(Mbuf)
    }

    /// Gives up ownership (the receiver frees it).
    pub(super) fn into_raw(self) -> sys::mbuf_t {
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

    /// Copies the packet, from `offset`, out to `uio` until either runs out. Returns the
    /// number of packet bytes copied.
    pub fn copy_out(
        &mut self,
        mut offset: usize,
        uio: &mut Uio<'_, ToUser>,
    ) -> Result<usize, Errno> {
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

    /// The data byte at `offset`, read in place (no copy call); `None` past the end.
    pub fn byte_at(&self, mut offset: usize) -> Option<u8> {
        let mut seg = self.raw();
        while !seg.is_null() {
            // SAFETY: `seg` is a segment of the chain we own; its first `mbuf_len` bytes at
            // `mbuf_data` are initialised.
            unsafe {
                let len = sys::mbuf_len(seg);
                if offset < len {
                    return Some(*sys::mbuf_data(seg).cast::<u8>().add(offset));
                }
                offset -= len;
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
    pub fn set_rcvif(&mut self, ifp: &Ifnet) {
        // SAFETY: both handles are live; the call only stores the pointer.
        let _ = unsafe { sys::mbuf_pkthdr_setrcvif(self.raw(), ifp.raw()) };
    }

    /// Makes the first `len` bytes the packet's frame header, the way `ifnet_input` wants a
    /// received packet: `pkthdr.header` points at them (the interface's demux reads the header
    /// there) and the data starts right after them. They must lie in the first segment (see
    /// [`Mbuf::from_uio`]); `EINVAL` otherwise, with nothing changed.
    pub fn take_frame_header(&mut self, len: usize) -> Result<(), Errno> {
        self.frame_header(&[], len)
    }

    /// As [`Mbuf::take_frame_header`] for `header.len()` bytes, after writing `header` over
    /// them (the front the packet was built with, [`Mbuf::from_uio`]).
    pub fn set_frame_header(&mut self, header: &[u8]) -> Result<(), Errno> {
        self.frame_header(header, header.len())
    }

    /// Writes `header` at the front, then makes the first `len` bytes the frame header.
    fn frame_header(&mut self, header: &[u8], len: usize) -> Result<(), Errno> {
        let m = self.raw();
        // SAFETY: our packet's first segment: `mbuf_len` of initialised bytes at `mbuf_data`.
        let (data, available) = unsafe { (sys::mbuf_data(m).cast::<u8>(), sys::mbuf_len(m)) };
        if data.is_null() || available < len || header.len() > len {
            return Err(Errno::EINVAL);
        }
        // SAFETY: the first segment holds at least `len` bytes at `data`, ours to write; the
        // header pointer stays in the mbuf's storage, since mbuf_adj only moves the data start
        // past those bytes.
        unsafe {
            core::ptr::copy_nonoverlapping(header.as_ptr(), data, header.len());
            sys::mbuf_pkthdr_setheader(m, data.cast());
            sys::mbuf_adj(m, len as i32);
        }
        Ok(())
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

/// One kind of mbuf tag of this driver: a module id, which `mbuf_tag_id_find` gives for a
/// name (the same name always gives the same id), and a tag type of the driver's choosing.
/// The id is looked up once ([`PacketTag::register`]); a tag cannot be set before that.
pub struct PacketTag {
    id: spin::Once<sys::mbuf_tag_id_t>,
    kind: u16,
}

impl PacketTag {
    /// Tags of type `kind`, with no module id yet.
    pub const fn new(kind: u16) -> PacketTag {
        PacketTag {
            id: spin::Once::new(),
            kind,
        }
    }

    /// Looks up the module id of `name` (a reverse-DNS string such as the bundle id).
    pub fn register(&self, name: &CStr) -> Result<(), Errno> {
        self.id
            .try_call_once(|| {
                let mut id: sys::mbuf_tag_id_t = 0;
                // SAFETY: a NUL-terminated string and a valid out-pointer.
                check(unsafe { sys::mbuf_tag_id_find(name.as_ptr(), &mut id) }).map(|()| id)
            })
            .map(|_| ())
    }
}

impl Mbuf {
    /// Attaches a copy of `data` to the packet as a `tag`; it travels with the packet header
    /// and is freed with the packet (`mbuf_tag_allocate`, `MBUF_DONTWAIT`). `ENOENT` before the
    /// tag's id was registered.
    pub fn set_tag(&mut self, tag: &PacketTag, data: &[u8]) -> Result<(), Errno> {
        let id = *tag.id.get().ok_or(Errno::ENOENT)?;
        let mut p: *mut core::ffi::c_void = core::ptr::null_mut();
        // SAFETY: our packet header mbuf and a valid out-pointer.
        check(unsafe {
            sys::mbuf_tag_allocate(
                self.raw(),
                id,
                tag.kind,
                data.len(),
                sys::MBUF_DONTWAIT,
                &mut p,
            )
        })?;
        // SAFETY: on success `p` addresses `data.len()` bytes of tag storage owned by the packet.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), p.cast::<u8>(), data.len()) };
        Ok(())
    }

    /// Copies the packet's `tag` into `out` (cut to fit); its length, or `None` when the
    /// packet has no such tag.
    pub fn tag(&self, tag: &PacketTag, out: &mut [u8]) -> Option<usize> {
        let id = *tag.id.get()?;
        let mut len = 0usize;
        let mut p: *mut core::ffi::c_void = core::ptr::null_mut();
        // SAFETY: our packet header mbuf and valid out-pointers.
        let rc = unsafe { sys::mbuf_tag_find(self.raw(), id, tag.kind, &mut len, &mut p) };
        if rc != 0 || p.is_null() {
            return None;
        }
        let n = len.min(out.len());
        // SAFETY: the tag holds `len` bytes at `p` for as long as the packet lives.
        unsafe { core::ptr::copy_nonoverlapping(p.cast::<u8>(), out.as_mut_ptr(), n) };
        Some(n)
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the chain and free it exactly once.
        unsafe { sys::mbuf_freem(self.raw()) };
    }
}
