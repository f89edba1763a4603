//! The `extern "C"` entry points: what the shim's `cdevsw`, `kmod_info` and ifnet/protocol
//! tables point at. Each turns raw kernel arguments into safe types and calls the core.
//!
//! They are reached only from C, through the shim's `kmod_info`, `cdevsw`, ifnet and protocol
//! tables, with the arguments the KPI guarantees (live uio, ifnet and mbuf handles for the
//! duration of the call). No Rust code calls them, hence the lint exception below.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use super::ifnet::Ifnet;
use super::mbuf::Mbuf;
use super::nodes::minor;
use super::select::SelectToken;
use super::sys;
use super::uio::Uio;
use crate::errno::Errno;
use crate::{cdev, driver, iface};
use core::ffi::{c_char, c_int, c_ulong, c_void};

fn errno_of(result: Result<(), Errno>) -> c_int {
    match result {
        Ok(()) => 0,
        Err(e) => e.code(),
    }
}

/// kmod start: set up locks, the cdevsw entry and the nodes.
#[no_mangle]
pub extern "C" fn tun_driver_start() -> sys::kern_return_t {
    match driver::start() {
        Ok(()) => sys::KERN_SUCCESS as sys::kern_return_t,
        Err(_) => sys::KERN_FAILURE as sys::kern_return_t,
    }
}

/// kmod stop: refuse while busy, else tear everything down.
#[no_mangle]
pub extern "C" fn tun_driver_stop() -> sys::kern_return_t {
    match driver::stop() {
        Ok(()) => sys::KERN_SUCCESS as sys::kern_return_t,
        Err(_) => sys::KERN_FAILURE as sys::kern_return_t,
    }
}

/// `d_open`.
#[no_mangle]
pub extern "C" fn tun_dev_open(
    dev: sys::dev_t,
    _oflags: c_int,
    _devtype: c_int,
    _p: *mut sys::proc_,
) -> c_int {
    errno_of(cdev::open(minor(dev)))
}

/// `d_close`.
#[no_mangle]
pub extern "C" fn tun_dev_close(
    dev: sys::dev_t,
    _fflag: c_int,
    _devtype: c_int,
    _p: *mut sys::proc_,
) -> c_int {
    errno_of(cdev::close(minor(dev)))
}

/// `d_read`.
#[no_mangle]
pub extern "C" fn tun_dev_read(dev: sys::dev_t, uio: *mut sys::uio, ioflag: c_int) -> c_int {
    // SAFETY: the kernel passes the live uio of this read call.
    let Some(mut uio) = (unsafe { Uio::from_raw(uio) }) else {
        return Errno::EINVAL.code();
    };
    let nonblocking = ioflag & sys::IO_NDELAY as c_int != 0;
    errno_of(cdev::read(minor(dev), &mut uio, nonblocking))
}

/// `d_write`.
#[no_mangle]
pub extern "C" fn tun_dev_write(dev: sys::dev_t, uio: *mut sys::uio, _ioflag: c_int) -> c_int {
    // SAFETY: the kernel passes the live uio of this write call.
    let Some(mut uio) = (unsafe { Uio::from_raw(uio) }) else {
        return Errno::EINVAL.code();
    };
    errno_of(cdev::write(minor(dev), &mut uio))
}

/// The size of an ioctl's argument, from the BSD encoding (13-bit length at bit 16).
const fn ioctl_arg_len(cmd: u32) -> usize {
    ((cmd >> 16) & 0x1fff) as usize
}

/// `d_ioctl`: `data` is a kernel buffer sized from the command (copied in/out by the kernel).
#[no_mangle]
pub extern "C" fn tun_dev_ioctl(
    dev: sys::dev_t,
    cmd: c_ulong,
    data: *mut c_char,
    _fflag: c_int,
    _p: *mut sys::proc_,
) -> c_int {
    let cmd = cmd as u32;
    let len = ioctl_arg_len(cmd);
    let arg: &mut [u8] = if len == 0 {
        &mut []
    } else if data.is_null() {
        return Errno::EFAULT.code();
    } else {
        // SAFETY: XNU's ioctl path allocates `data` with at least IOCPARM_LEN(cmd) bytes and
        // nobody else touches it during the call.
        unsafe { core::slice::from_raw_parts_mut(data.cast::<u8>(), len) }
    };
    errno_of(cdev::ioctl(minor(dev), cmd, arg))
}

/// `d_select`: 1 if ready, else records the selector and returns 0.
#[no_mangle]
pub extern "C" fn tun_dev_select(
    dev: sys::dev_t,
    which: c_int,
    wql: *mut c_void,
    _p: *mut sys::proc_,
) -> c_int {
    c_int::from(cdev::select(
        minor(dev),
        which as u32,
        SelectToken::new(wql),
    ))
}

/// The unit an interface belongs to (its softc is the unit number plus one).
fn unit_of(ifp: &Ifnet) -> Option<usize> {
    ifp.softc().checked_sub(1)
}

/// ifnet `output`: a packet from the stack, framed by [`tun_if_framer`] or raw (OUT-6).
#[no_mangle]
pub extern "C" fn tun_if_output(ifp: sys::ifnet_t, m: sys::mbuf_t) -> sys::errno_t {
    // SAFETY: the kernel hands us ownership of the packet for this call.
    let Some(packet) = (unsafe { Mbuf::from_raw(m) }) else {
        return Errno::EINVAL.code();
    };
    // SAFETY: the ifnet is live during its own callback.
    let Some(ifp) = (unsafe { Ifnet::from_raw(ifp) }) else {
        return Errno::EINVAL.code();
    };
    let Some(unit) = unit_of(&ifp) else {
        return Errno::ENXIO.code();
    };
    errno_of(iface::output(unit, ifp, packet))
}

/// ifnet `framer`: the 4-byte family link header (OUT-6); LMODE's destination in a tag.
#[no_mangle]
pub extern "C" fn tun_if_framer(
    ifp: sys::ifnet_t,
    packet: *mut sys::mbuf_t,
    dest: *const sys::sockaddr,
    _dest_linkaddr: *const c_char,
    _frame_type: *const c_char,
) -> sys::errno_t {
    if packet.is_null() {
        return Errno::EINVAL.code();
    }
    // SAFETY: the ifnet is live during its own callback.
    let Some(ifp) = (unsafe { Ifnet::from_raw(ifp) }) else {
        return Errno::EINVAL.code();
    };
    let dest_bytes: &[u8] = if dest.is_null() {
        &[]
    } else {
        // SAFETY: `dest` is a valid sockaddr whose first byte is its length (sa_len); we read
        // at most the largest sockaddr the driver keeps.
        unsafe {
            let len = usize::from((*dest).sa_len).clamp(2, crate::limits::MAX_SOCKADDR_LEN);
            core::slice::from_raw_parts(dest.cast::<u8>(), len)
        }
    };
    // SAFETY: DLIL passes the packet it owns; we take it for the call and give back the new
    // head, or NULL when the packet was freed.
    let Some(m) = (unsafe { Mbuf::from_raw(*packet) }) else {
        return Errno::EINVAL.code();
    };
    match iface::frame(ifp, m, dest_bytes) {
        Ok(m) => {
            // SAFETY: valid out-pointer (checked above).
            unsafe { *packet = m.into_raw() };
            0
        }
        Err((m, e)) => {
            // SAFETY: as above; DLIL frees whatever is left on error.
            unsafe { *packet = m.map_or(core::ptr::null_mut(), Mbuf::into_raw) };
            e.code()
        }
    }
}

/// ifnet `demux`: the family the driver recorded in the frame header at write time.
#[no_mangle]
pub extern "C" fn tun_if_demux(
    _ifp: sys::ifnet_t,
    _m: sys::mbuf_t,
    frame_header: *mut c_char,
    protocol_family: *mut sys::protocol_family_t,
) -> sys::errno_t {
    if frame_header.is_null() || protocol_family.is_null() {
        return Errno::EINVAL.code();
    }
    let mut header = [0u8; 4];
    // SAFETY: the write path points pkthdr.header at 4 bytes of family it wrote just before
    // the IP header, in the same mbuf; the kernel passes that pointer here.
    unsafe { core::ptr::copy_nonoverlapping(frame_header.cast::<u8>(), header.as_mut_ptr(), 4) };
    match iface::demux(header) {
        Ok(family) => {
            // SAFETY: valid out-pointer (checked above).
            unsafe { *protocol_family = family };
            0
        }
        Err(e) => e.code(),
    }
}

/// ifnet `add_proto`.
#[no_mangle]
pub extern "C" fn tun_if_add_proto(
    _ifp: sys::ifnet_t,
    family: sys::protocol_family_t,
    _demux: *const sys::ifnet_demux_desc,
    _count: u32,
) -> sys::errno_t {
    errno_of(iface::check_protocol(family))
}

/// ifnet `del_proto`.
#[no_mangle]
pub extern "C" fn tun_if_del_proto(
    _ifp: sys::ifnet_t,
    _family: sys::protocol_family_t,
) -> sys::errno_t {
    0
}

/// ifnet `ioctl`. For address commands `data` is a `struct ifaddr *` the driver must not read.
#[no_mangle]
pub extern "C" fn tun_if_ioctl(ifp: sys::ifnet_t, cmd: c_ulong, data: *mut c_void) -> sys::errno_t {
    // SAFETY: the ifnet is live during its own callback.
    let Some(ifp) = (unsafe { Ifnet::from_raw(ifp) }) else {
        return Errno::EINVAL.code();
    };
    let Some(unit) = unit_of(&ifp) else {
        return Errno::ENXIO.code();
    };
    let mut arg = IfIoctlArg(data);
    errno_of(iface::ioctl(unit, ifp, cmd as u32, &mut arg))
}

/// ifnet `detached`: detaching finished; the unit may now be freed.
#[no_mangle]
pub extern "C" fn tun_if_detached(ifp: sys::ifnet_t) {
    // SAFETY: the ifnet is live during its own callback.
    if let Some(unit) = unsafe { Ifnet::from_raw(ifp) }.and_then(|ifp| unit_of(&ifp)) {
        iface::detached(unit);
    }
}

/// Plumber attach (`proto_plumb`): the stack attaches `protocol` to one tun interface.
#[no_mangle]
pub extern "C" fn tun_plumb_attach(
    ifp: sys::ifnet_t,
    protocol: sys::protocol_family_t,
) -> sys::errno_t {
    // SAFETY: the ifnet is live during the plumber call.
    let Some(ifp) = (unsafe { Ifnet::from_raw(ifp) }) else {
        return Errno::EINVAL.code();
    };
    errno_of(iface::plumb(ifp, protocol))
}

/// Plumber detach (`proto_unplumb`): the stack detaches `protocol` from one tun interface.
#[no_mangle]
pub extern "C" fn tun_plumb_detach(ifp: sys::ifnet_t, protocol: sys::protocol_family_t) {
    // SAFETY: the ifnet is live during the plumber call.
    if let Some(ifp) = unsafe { Ifnet::from_raw(ifp) } {
        iface::unplumb(ifp, protocol);
    }
}

/// Protocol `input`: hands a demuxed packet to the stack.
#[no_mangle]
pub extern "C" fn tun_proto_input(
    _ifp: sys::ifnet_t,
    protocol: sys::protocol_family_t,
    m: sys::mbuf_t,
    _header: *mut c_char,
) -> sys::errno_t {
    // SAFETY: the kernel passes ownership of the packet; proto_input takes it over.
    unsafe { sys::proto_input(protocol, m) }
}

/// Protocol `pre_output`: nothing to resolve on a point-to-point link; the framer records the
/// destination.
#[no_mangle]
pub extern "C" fn tun_proto_pre_output(
    _ifp: sys::ifnet_t,
    _protocol: sys::protocol_family_t,
    _packet: *mut sys::mbuf_t,
    _dest: *const sys::sockaddr,
    _route: *mut c_void,
    _frame_type: *mut c_char,
    _link_layer_dest: *mut c_char,
) -> sys::errno_t {
    0
}

/// The argument of an interface ioctl, read only for the commands whose argument is an
/// `ifreq` or an `ifstat`.
pub struct IfIoctlArg(*mut c_void);

impl IfIoctlArg {
    /// `ifr_mtu` of a `struct ifreq` (offset 16).
    pub fn ifreq_mtu(&self) -> Option<u32> {
        if self.0.is_null() {
            return None;
        }
        // SAFETY: for SIOCSIFMTU the stack passes a `struct ifreq` (32 bytes).
        let v = unsafe { core::ptr::read_unaligned(self.0.cast::<u8>().add(16).cast::<i32>()) };
        u32::try_from(v).ok()
    }

    /// The `ascii` text of a `struct ifstat`: `IFSTATMAX` + 1 bytes after the name.
    pub fn ifstat_ascii(&mut self) -> Option<&mut [u8]> {
        if self.0.is_null() {
            return None;
        }
        // SAFETY: for SIOCGIFSTATUS the stack passes a `struct ifstat` of IFNAMSIZ +
        // IFSTATMAX + 1 bytes (the size the command encodes), ours alone during the call.
        Some(unsafe {
            core::slice::from_raw_parts_mut(
                self.0.cast::<u8>().add(crate::ioctl::IFNAMSIZ),
                crate::ioctl::IFSTATMAX + 1,
            )
        })
    }
}
