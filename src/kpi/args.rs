//! What the kernel passes to the driver's entry points, as types only the kernel can make.
//!
//! Each type is ABI-identical to the C parameter it stands for (`#[repr(transparent)]` over the
//! raw pointer), so the entry points (`src/entry.rs`) take them directly in their `extern "C"`
//! signatures and turn them into safe handles without `unsafe`. None has a constructor, a
//! `Default` or a `Clone`: a value exists only as an argument the kernel passed to the current
//! call, and that is what makes each conversion below sound. The shim's tables give each entry
//! point to the kernel with the C type the comment names (shim/kpi.h).

use super::addr::{SockAddr, SOCKADDR_MAX_LEN};
use super::errno::Errno;
use super::ifnet::IfnetRef;
use super::ioccom::{self, IFNAMSIZ, IFSTATMAX};
use super::mbuf::Mbuf;
use super::sys;
use super::uio::{copy_to_user, FromUser, ToUser, Uio};
use core::ffi::{c_char, c_ulong, c_void};

/// `d_read`'s `struct uio *`: a `UIO_READ` request, live for the call.
#[repr(transparent)]
pub struct ReadUio(*mut sys::uio);

impl ReadUio {
    /// The request, borrowed for the call; `None` for NULL.
    pub fn get(&mut self) -> Option<Uio<'_, ToUser>> {
        // SAFETY: the kernel passes d_read the live uio of this read, of direction UIO_READ.
        unsafe { Uio::new(self.0) }
    }
}

/// `d_write`'s `struct uio *`: a `UIO_WRITE` request, live for the call.
#[repr(transparent)]
pub struct WriteUio(*mut sys::uio);

impl WriteUio {
    /// The request, borrowed for the call; `None` for NULL.
    pub fn get(&mut self) -> Option<Uio<'_, FromUser>> {
        // SAFETY: the kernel passes d_write the live uio of this write, of direction UIO_WRITE.
        unsafe { Uio::new(self.0) }
    }
}

/// `d_ioctl`'s `caddr_t data`: the kernel's copy of the argument, `IOCPARM_LEN(cmd)` bytes.
#[repr(transparent)]
pub struct IoctlData(*mut c_char);

impl IoctlData {
    /// The argument of command `cmd` (the `cmd` this same call received), sized by its
    /// encoding; empty for a command without one, `EFAULT` for a NULL buffer.
    pub fn get(&mut self, cmd: c_ulong) -> Result<&mut [u8], Errno> {
        let len = ioccom::arg_len(cmd as u32);
        if len == 0 {
            return Ok(&mut []);
        }
        if self.0.is_null() {
            return Err(Errno::EFAULT);
        }
        // SAFETY: XNU's ioctl path allocates `data` with at least IOCPARM_LEN(cmd) bytes and
        // nobody else touches it during the call; the borrow ends with `self`'s.
        Ok(unsafe { core::slice::from_raw_parts_mut(self.0.cast::<u8>(), len) })
    }
}

/// An `ifnet_t` passed to an interface callback or a plumber: referenced by the caller for
/// the call.
#[repr(transparent)]
pub struct IfnetArg(*mut sys::ifnet);

impl IfnetArg {
    /// The interface, borrowed for the call; `None` for NULL.
    pub fn get(&self) -> Option<IfnetRef<'_>> {
        // SAFETY: the kernel holds a reference on the ifnet for the duration of its callback.
        unsafe { IfnetRef::new(self.0) }
    }
}

/// An `mbuf_t` whose ownership passes to the driver with the call (ifnet `output`).
#[repr(transparent)]
pub struct PacketArg(*mut sys::__mbuf);

impl PacketArg {
    /// The packet, now the driver's; `None` for NULL.
    pub fn take(self) -> Option<Mbuf> {
        // SAFETY: the kernel hands the packet over with this call and does not use it again.
        unsafe { Mbuf::from_raw(self.0) }
    }
}

/// The framer's `mbuf_t *packet`: the driver takes the packet and puts back the new head, or
/// nothing (NULL) when it freed it.
#[repr(transparent)]
pub struct PacketSlot(*mut sys::mbuf_t);

impl PacketSlot {
    /// Takes the packet out of the slot, leaving NULL; `None` for a NULL slot or packet.
    pub fn take(&mut self) -> Option<Mbuf> {
        if self.0.is_null() {
            return None;
        }
        // SAFETY: a non-NULL slot is DLIL's valid out-pointer for this call, holding the
        // packet DLIL hands over; NULL is left in its place until `put`.
        unsafe { Mbuf::from_raw(core::mem::replace(&mut *self.0, core::ptr::null_mut())) }
    }

    /// Puts `packet` (or NULL) back for DLIL, which owns it again.
    pub fn put(&mut self, packet: Option<Mbuf>) {
        if self.0.is_null() {
            return; // nowhere to put it: dropping frees it
        }
        // SAFETY: as in `take`.
        unsafe { *self.0 = packet.map_or(core::ptr::null_mut(), Mbuf::into_raw) };
    }
}

/// The framer's `const struct sockaddr *dest`.
#[repr(transparent)]
pub struct SockaddrArg(*const sys::sockaddr);

impl SockaddrArg {
    /// A copy of the address, at most `SOCKADDR_MAX_LEN` bytes of it; `None` for NULL.
    pub fn get(&self) -> Option<SockAddr> {
        if self.0.is_null() {
            return None;
        }
        // SAFETY: a non-NULL `dest` is a valid sockaddr whose first byte is its length
        // (`sa_len`); we read at most that many bytes, and at least the two of the header.
        let bytes = unsafe {
            let len = usize::from((*self.0).sa_len).clamp(2, SOCKADDR_MAX_LEN);
            core::slice::from_raw_parts(self.0.cast::<u8>(), len)
        };
        Some(SockAddr::new(bytes))
    }
}

/// The demux callback's packet (`mbuf_t`, still DLIL's) and `char *frame_header`.
#[repr(transparent)]
pub struct DemuxPacket(*mut sys::__mbuf);

/// The demux callback's `char *frame_header`: `pkthdr.header` of the packet, which the
/// driver's input path set with [`Mbuf::take_frame_header`].
#[repr(transparent)]
pub struct FrameHeader(*mut c_char);

impl FrameHeader {
    /// The `N` bytes of the frame header of `packet`, if the header is exactly `N` bytes that
    /// end where the packet's data starts (what `Mbuf::take_frame_header(N)` leaves); `None`
    /// otherwise, and for NULL.
    pub fn read<const N: usize>(&self, packet: &DemuxPacket) -> Option<[u8; N]> {
        if self.0.is_null() || packet.0.is_null() {
            return None;
        }
        // SAFETY: DLIL passes the live packet it is demultiplexing.
        let data = unsafe { sys::mbuf_data(packet.0) }.cast::<u8>();
        if self.0.cast::<u8>().wrapping_add(N) != data {
            return None;
        }
        let mut out = [0u8; N];
        // SAFETY: the header is the N bytes just before the data in the packet's first mbuf,
        // left there by take_frame_header (which checked they were in that mbuf).
        unsafe { core::ptr::copy_nonoverlapping(self.0.cast::<u8>(), out.as_mut_ptr(), N) };
        Some(out)
    }
}

/// The demux callback's `protocol_family_t *protocol_family` out-parameter.
#[repr(transparent)]
pub struct FamilyOut(*mut sys::protocol_family_t);

impl FamilyOut {
    /// Answers `family`; `EINVAL` for a NULL out-pointer.
    pub fn set(self, family: u32) -> Result<(), Errno> {
        if self.0.is_null() {
            return Err(Errno::EINVAL);
        }
        // SAFETY: a non-NULL out-pointer DLIL passes for this call.
        unsafe { *self.0 = family };
        Ok(())
    }
}

/// The interface ioctl's `void *data`. Read only for the commands whose argument is an `ifreq`,
/// `ifstat` or `ifmediareq`; for address commands it is a `struct ifaddr *` the driver never
/// reads.
#[repr(transparent)]
pub struct IfIoctlData(*mut c_void);

/// An interface ioctl's command with its argument.
pub struct IfIoctlArg {
    cmd: u32,
    data: IfIoctlData,
}

impl IfIoctlArg {
    /// Pairs the `cmd` and `data` of one interface ioctl call (both as the kernel passed them).
    pub fn new(cmd: c_ulong, data: IfIoctlData) -> IfIoctlArg {
        IfIoctlArg {
            cmd: cmd as u32,
            data,
        }
    }

    /// The command.
    pub fn cmd(&self) -> u32 {
        self.cmd
    }

    /// The argument's bytes, for the commands whose argument is a structure of the size the
    /// command encodes (`struct ifreq`, `ifstat`, `ifmediareq`): the only ones the driver reads
    /// or writes. `None` for any other command (an address command's argument is a
    /// `struct ifaddr *`) and for a NULL argument.
    fn bytes(&mut self) -> Option<&mut [u8]> {
        let structured = matches!(
            self.cmd,
            ioccom::SIOCSIFMTU
                | ioccom::SIOCSIFALTMTU
                | ioccom::SIOCSIFLLADDR
                | ioccom::SIOCGIFDEVMTU
                | ioccom::SIOCGIFMEDIA32
                | ioccom::SIOCGIFMEDIA64
                | ioccom::SIOCGIFSTATUS
        );
        if !structured || self.data.0.is_null() {
            return None;
        }
        // SAFETY: for these commands XNU's ifioctl copies the caller's structure into a kernel
        // buffer of IOCPARM_LEN(cmd) bytes and passes it to the driver, ours alone during the
        // call; the borrow ends with `self`'s.
        Some(unsafe {
            core::slice::from_raw_parts_mut(self.data.0.cast::<u8>(), ioccom::arg_len(self.cmd))
        })
    }

    /// The native-endian int at `at` of the argument.
    fn int_at(&mut self, at: usize) -> Option<i32> {
        let b = self.bytes()?.get(at..at + 4)?;
        Some(i32::from_ne_bytes(b.try_into().ok()?))
    }

    /// Writes `values` as consecutive native-endian ints from `at`; `None` if they don't fit.
    fn set_ints(&mut self, at: usize, values: &[u32]) -> Option<()> {
        let b = self.bytes()?.get_mut(at..at + 4 * values.len())?;
        for (word, v) in b.chunks_exact_mut(4).zip(values) {
            word.copy_from_slice(&(*v as i32).to_ne_bytes());
        }
        Some(())
    }

    /// `ifr_mtu` of the `struct ifreq` (the int after the name) of `SIOCSIFMTU` or
    /// `SIOCSIFALTMTU`; `None` for another command, a NULL argument or a negative MTU.
    pub fn ifreq_mtu(&mut self) -> Option<u32> {
        if self.cmd != ioccom::SIOCSIFMTU && self.cmd != ioccom::SIOCSIFALTMTU {
            return None;
        }
        u32::try_from(self.int_at(IFNAMSIZ)?).ok()
    }

    /// The `ascii` text of the `struct ifstat` of `SIOCGIFSTATUS`: `IFSTATMAX` + 1 bytes after
    /// the name. `None` for another command or a NULL argument.
    pub fn ifstat_ascii(&mut self) -> Option<&mut [u8]> {
        if self.cmd != ioccom::SIOCGIFSTATUS {
            return None;
        }
        self.bytes()?.get_mut(IFNAMSIZ..IFNAMSIZ + IFSTATMAX + 1)
    }

    /// `ifr_addr` (a sockaddr after the name) of the `struct ifreq` of `SIOCSIFLLADDR`: its
    /// `sa_len`, its `sa_family` and the first six bytes of `sa_data`. `None` for another
    /// command or a NULL argument.
    pub fn ifreq_lladdr(&mut self) -> Option<(u8, u8, [u8; 6])> {
        if self.cmd != ioccom::SIOCSIFLLADDR {
            return None;
        }
        let sa = self.bytes()?.get(IFNAMSIZ..IFNAMSIZ + 8)?;
        Some((sa[0], sa[1], sa[2..].try_into().ok()?))
    }

    /// Answers `SIOCGIFDEVMTU`: `ifr_devmtu` {current, min, max} after the name. `false` for
    /// another command or a NULL argument.
    pub fn set_ifreq_devmtu(&mut self, current: u32, min: u32, max: u32) -> bool {
        self.cmd == ioccom::SIOCGIFDEVMTU && self.set_ints(IFNAMSIZ, &[current, min, max]).is_some()
    }

    /// Answers `SIOCGIFMEDIA32`/`SIOCGIFMEDIA64` (`struct ifmediareq`, bsd/net/if_media.h;
    /// `ifmediareq64` is `pack(4)`): `ifm_current` and `ifm_active` = `active`, `ifm_mask` 0,
    /// `ifm_status` = `status`; when the caller gave a media list (`ifm_ulist`, a user address,
    /// four bytes or eight in the 64-bit form) with room for one word (`ifm_count` ≥ 1),
    /// `active` is copied out to it (`EFAULT` if that fails); `ifm_count` becomes 1, the number
    /// of media. `EINVAL` for another command or a NULL argument.
    pub fn set_ifmediareq(&mut self, active: u32, status: u32) -> Result<(), Errno> {
        // After the name: current, mask, status, active, count, then the list pointer.
        const COUNT: usize = IFNAMSIZ + 16;
        const LIST: usize = IFNAMSIZ + 20;
        let list_len = match self.cmd {
            ioccom::SIOCGIFMEDIA32 => 4,
            ioccom::SIOCGIFMEDIA64 => 8,
            _ => return Err(Errno::EINVAL),
        };
        let count = self.int_at(COUNT).ok_or(Errno::EINVAL)?;
        let list = self
            .bytes()
            .and_then(|b| b.get(LIST..LIST + list_len))
            .ok_or(Errno::EINVAL)?;
        let mut address = [0u8; 8];
        address[..list_len].copy_from_slice(list);
        let list = if list_len == 8 {
            u64::from_ne_bytes(address)
        } else {
            u64::from(u32::from_ne_bytes([
                address[0], address[1], address[2], address[3],
            ]))
        };
        if list != 0 && count >= 1 {
            copy_to_user(list, &(active as i32).to_ne_bytes())?;
        }
        self.set_ints(IFNAMSIZ, &[active, 0, status, active, 1])
            .ok_or(Errno::EINVAL)
    }
}
