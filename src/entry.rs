//! The `extern "C"` entry points: what the shim's `kmod_info`, `cdevsw`, ifnet, protocol and
//! plumber tables point at (shim/shim.c). The top floor: each turns the kernel's arguments
//! into safe types (`kpi::args`, all ABI-identical to the C parameters) and calls the core.
//!
//! No `unsafe` block here: the `unsafe_code` allowance below is for `#[no_mangle]` alone,
//! which the lint counts as unsafe because an exported name could collide with another.

#![allow(unsafe_code)]

use crate::kpi::args::{
    DemuxPacket, FamilyOut, FrameHeader, IfIoctlArg, IfIoctlData, IfnetArg, IoctlData, PacketArg,
    PacketSlot, ReadUio, SockaddrArg, WriteUio,
};
use crate::kpi::errno::Errno;
use crate::kpi::ifnet;
use crate::kpi::nodes::minor;
use crate::kpi::select::SelectToken;
use crate::kpi::sys;
use crate::link::LinkId;
use crate::{cdev, driver, iface};
use core::ffi::{c_char, c_int, c_ulong, c_void};

fn errno_of(result: Result<(), Errno>) -> c_int {
    match result {
        Ok(()) => 0,
        Err(e) => e.code(),
    }
}

/// The kind of a cdevsw the kernel called through (`link` as the shim's table numbers it).
fn link_of(link: u32) -> Result<LinkId, Errno> {
    LinkId::from_index(link as usize).ok_or(Errno::ENXIO)
}

fn kern_return_of(result: Result<(), Errno>) -> sys::kern_return_t {
    match result {
        Ok(()) => sys::KERN_SUCCESS as sys::kern_return_t,
        Err(_) => sys::KERN_FAILURE as sys::kern_return_t,
    }
}

/// kmod start: set up locks, the cdevsw entry and the nodes.
#[no_mangle]
pub extern "C" fn tun_driver_start() -> sys::kern_return_t {
    kern_return_of(driver::start())
}

/// kmod stop: refuse while busy, else tear everything down.
#[no_mangle]
pub extern "C" fn tun_driver_stop() -> sys::kern_return_t {
    kern_return_of(driver::stop())
}

/// `d_open` of the cdevsw of kind `link`.
#[no_mangle]
pub extern "C" fn tun_dev_open(
    link: u32,
    dev: sys::dev_t,
    _oflags: c_int,
    _devtype: c_int,
    _p: *mut sys::proc_,
) -> c_int {
    errno_of(link_of(link).and_then(|link| cdev::open(link, minor(dev))))
}

/// `d_close`.
#[no_mangle]
pub extern "C" fn tun_dev_close(
    link: u32,
    dev: sys::dev_t,
    _fflag: c_int,
    _devtype: c_int,
    _p: *mut sys::proc_,
) -> c_int {
    errno_of(link_of(link).and_then(|link| cdev::close(link, minor(dev))))
}

/// `d_read`.
#[no_mangle]
pub extern "C" fn tun_dev_read(
    link: u32,
    dev: sys::dev_t,
    mut uio: ReadUio,
    ioflag: c_int,
) -> c_int {
    let Some(mut uio) = uio.get() else {
        return Errno::EINVAL.code();
    };
    let nonblocking = ioflag & sys::IO_NDELAY as c_int != 0;
    errno_of(link_of(link).and_then(|link| cdev::read(link, minor(dev), &mut uio, nonblocking)))
}

/// `d_write`.
#[no_mangle]
pub extern "C" fn tun_dev_write(
    link: u32,
    dev: sys::dev_t,
    mut uio: WriteUio,
    _ioflag: c_int,
) -> c_int {
    let Some(mut uio) = uio.get() else {
        return Errno::EINVAL.code();
    };
    errno_of(link_of(link).and_then(|link| cdev::write(link, minor(dev), &mut uio)))
}

/// `d_ioctl`: `data` is a kernel buffer sized from the command (copied in/out by the kernel).
#[no_mangle]
pub extern "C" fn tun_dev_ioctl(
    link: u32,
    dev: sys::dev_t,
    cmd: c_ulong,
    mut data: IoctlData,
    _fflag: c_int,
    _p: *mut sys::proc_,
) -> c_int {
    let result = link_of(link).and_then(|link| {
        let arg = data.get(cmd)?;
        cdev::ioctl(link, minor(dev), cmd as u32, arg)
    });
    errno_of(result)
}

/// `d_select`: 1 if ready, else records the selector and returns 0.
#[no_mangle]
pub extern "C" fn tun_dev_select(
    link: u32,
    dev: sys::dev_t,
    which: c_int,
    wql: SelectToken,
    _p: *mut sys::proc_,
) -> c_int {
    // An unknown kind cannot come from the shim; answer "ready" so read reports the error.
    let ready = link_of(link).map_or(true, |link| {
        cdev::select(link, minor(dev), which as u32, wql)
    });
    c_int::from(ready)
}

/// ifnet `output`: a packet from the stack, framed by [`tun_if_framer`] or raw (OUT-6).
#[no_mangle]
pub extern "C" fn tun_if_output(ifp: IfnetArg, m: PacketArg) -> sys::errno_t {
    let Some(packet) = m.take() else {
        return Errno::EINVAL.code();
    };
    let Some(ifp) = ifp.get() else {
        return Errno::EINVAL.code();
    };
    errno_of(iface::output(&ifp, packet))
}

/// ifnet `framer`: the 4-byte family link header (OUT-6); LMODE's destination in a tag.
#[no_mangle]
pub extern "C" fn tun_if_framer(
    ifp: IfnetArg,
    mut packet: PacketSlot,
    dest: SockaddrArg,
    _dest_linkaddr: *const c_char,
    _frame_type: *const c_char,
) -> sys::errno_t {
    let Some(ifp) = ifp.get() else {
        return Errno::EINVAL.code();
    };
    let Some(m) = packet.take() else {
        return Errno::EINVAL.code();
    };
    let (head, result) = match iface::frame(&ifp, m, dest.get()) {
        Ok(m) => (Some(m), Ok(())),
        Err((m, e)) => (m, Err(e)), // DLIL frees whatever is left on error
    };
    packet.put(head);
    errno_of(result)
}

/// ifnet `demux`: the family the driver recorded in the frame header at write time.
#[no_mangle]
pub extern "C" fn tun_if_demux(
    _ifp: IfnetArg,
    m: DemuxPacket,
    frame_header: FrameHeader,
    protocol_family: FamilyOut,
) -> sys::errno_t {
    let Some(header) = frame_header.read(&m) else {
        return Errno::EINVAL.code();
    };
    errno_of(iface::demux(header).and_then(|family| protocol_family.set(family)))
}

/// ifnet `add_proto`.
#[no_mangle]
pub extern "C" fn tun_if_add_proto(
    _ifp: IfnetArg,
    family: sys::protocol_family_t,
    _demux: *const sys::ifnet_demux_desc,
    _count: u32,
) -> sys::errno_t {
    errno_of(iface::check_protocol(family))
}

/// ifnet `del_proto`.
#[no_mangle]
pub extern "C" fn tun_if_del_proto(
    _ifp: IfnetArg,
    _family: sys::protocol_family_t,
) -> sys::errno_t {
    0
}

/// ifnet `ioctl`. For address commands `data` is a `struct ifaddr *` the driver must not read.
#[no_mangle]
pub extern "C" fn tun_if_ioctl(ifp: IfnetArg, cmd: c_ulong, data: IfIoctlData) -> sys::errno_t {
    let Some(ifp) = ifp.get() else {
        return Errno::EINVAL.code();
    };
    errno_of(iface::ioctl(&ifp, &mut IfIoctlArg::new(cmd, data)))
}

/// ifnet `detached`: detaching finished; the unit may now be freed.
#[no_mangle]
pub extern "C" fn tun_if_detached(ifp: IfnetArg) {
    if let Some(ifp) = ifp.get() {
        iface::detached(&ifp);
    }
}

/// Plumber attach (`proto_plumb`): the stack attaches `protocol` to one tun interface.
#[no_mangle]
pub extern "C" fn tun_plumb_attach(
    ifp: IfnetArg,
    protocol: sys::protocol_family_t,
) -> sys::errno_t {
    let Some(ifp) = ifp.get() else {
        return Errno::EINVAL.code();
    };
    errno_of(iface::plumb(&ifp, protocol))
}

/// Plumber detach (`proto_unplumb`): the stack detaches `protocol` from one tun interface.
#[no_mangle]
pub extern "C" fn tun_plumb_detach(ifp: IfnetArg, protocol: sys::protocol_family_t) {
    if let Some(ifp) = ifp.get() {
        iface::unplumb(&ifp, protocol);
    }
}

/// Protocol `input`: hands a demuxed packet to the stack.
#[no_mangle]
pub extern "C" fn tun_proto_input(
    _ifp: IfnetArg,
    protocol: sys::protocol_family_t,
    m: PacketArg,
    _header: *mut c_char,
) -> sys::errno_t {
    match m.take() {
        Some(packet) => errno_of(ifnet::proto_input(protocol, packet)),
        None => Errno::EINVAL.code(),
    }
}

/// Protocol `pre_output`: nothing to resolve on a point-to-point link; the framer records the
/// destination.
#[no_mangle]
pub extern "C" fn tun_proto_pre_output(
    _ifp: IfnetArg,
    _protocol: sys::protocol_family_t,
    _packet: *mut sys::mbuf_t,
    _dest: *const sys::sockaddr,
    _route: *mut c_void,
    _frame_type: *mut c_char,
    _link_layer_dest: *mut c_char,
) -> sys::errno_t {
    0
}
