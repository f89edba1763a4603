//! Darwin types, constants and the x86_64 layouts the simulator shares with the kext. They
//! mirror the kext's own header (`shim/kpi.h`); sizes are pinned here as well.

#![allow(non_camel_case_types, missing_docs)]

use std::ffi::{c_char, c_int, c_ulong, c_void};

pub type dev_t = i32;
pub type errno_t = c_int;
pub type kern_return_t = c_int;
pub type proc_t = *mut c_void;
pub type ifnet_t = *mut c_void;
pub type mbuf_t = *mut c_void;
pub type uio_t = *mut c_void;
pub type protocol_family_t = u32;

pub const KERN_SUCCESS: kern_return_t = 0;
pub const KERN_FAILURE: kern_return_t = 5;

pub const PCATCH: c_int = 0x100;
pub const PDROP: c_int = 0x400;
pub const PSPIN: c_int = 0x800;

pub const FREAD: c_int = 1;
pub const FWRITE: c_int = 2;
pub const IO_NDELAY: c_int = 0x10;
pub const S_IFCHR: c_int = 0o020000;
pub const DEVFS_CHAR: c_int = 0;

pub const IFF_UP: u16 = 0x1;
pub const IFF_BROADCAST: u16 = 0x2;
pub const IFF_POINTOPOINT: u16 = 0x10;
pub const IFF_RUNNING: u16 = 0x40;
pub const IFF_NOARP: u16 = 0x80;
pub const IFF_MULTICAST: u16 = 0x8000;
pub const AF_INET: u32 = 2;
pub const AF_INET6: u32 = 30;
pub const DLT_NULL: u32 = 0;
pub const IFNET_FAMILY_TUN: u32 = 4;
pub const IFT_OTHER: u32 = 1;
pub const SIGIO: i32 = 23;

pub const UIO_READ: c_int = 0;
pub const UIO_WRITE: c_int = 1;
pub const MBUF_WAITOK: c_int = 0;
pub const MBUF_DONTWAIT: c_int = 1;

/// `major(dev)`: bits 24..31 of a Darwin `dev_t`.
pub fn major(dev: dev_t) -> i32 {
    ((dev as u32) >> 24) as i32 & 0xff
}

/// `minor(dev)`: bits 0..23.
pub fn minor(dev: dev_t) -> i32 {
    dev & 0x00ff_ffff
}

/// `makedev(major, minor)`.
pub fn makedev(major: i32, minor: i32) -> dev_t {
    (major << 24) | minor
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct timespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sockaddr {
    pub sa_len: u8,
    pub sa_family: u8,
    pub sa_data: [u8; 14],
}

pub type d_open_t = unsafe extern "C" fn(dev_t, c_int, c_int, proc_t) -> c_int;
pub type d_close_t = unsafe extern "C" fn(dev_t, c_int, c_int, proc_t) -> c_int;
pub type d_rdwr_t = unsafe extern "C" fn(dev_t, uio_t, c_int) -> c_int;
pub type d_ioctl_t = unsafe extern "C" fn(dev_t, c_ulong, *mut c_char, c_int, proc_t) -> c_int;
pub type d_select_t = unsafe extern "C" fn(dev_t, c_int, *mut c_void, proc_t) -> c_int;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct cdevsw {
    pub d_open: Option<d_open_t>,
    pub d_close: Option<d_close_t>,
    pub d_read: Option<d_rdwr_t>,
    pub d_write: Option<d_rdwr_t>,
    pub d_ioctl: Option<d_ioctl_t>,
    pub d_stop: *const c_void,
    pub d_reset: *const c_void,
    pub d_ttys: *const c_void,
    pub d_select: Option<d_select_t>,
    pub d_mmap: *const c_void,
    pub d_strategy: *const c_void,
    pub d_reserved_1: *const c_void,
    pub d_reserved_2: *const c_void,
    pub d_type: c_int,
}

#[repr(C, packed(4))]
pub struct kmod_info {
    pub next: *mut kmod_info,
    pub info_version: i32,
    pub id: u32,
    pub name: [c_char; 64],
    pub version: [c_char; 64],
    pub reference_count: i32,
    pub reference_list: *mut c_void,
    pub address: u64,
    pub size: u64,
    pub hdr_size: u64,
    pub start: Option<unsafe extern "C" fn(*mut kmod_info, *mut c_void) -> kern_return_t>,
    pub stop: Option<unsafe extern "C" fn(*mut kmod_info, *mut c_void) -> kern_return_t>,
}

pub type ifnet_output_func = unsafe extern "C" fn(ifnet_t, mbuf_t) -> errno_t;
pub type ifnet_ioctl_func = unsafe extern "C" fn(ifnet_t, c_ulong, *mut c_void) -> errno_t;
pub type ifnet_demux_func =
    unsafe extern "C" fn(ifnet_t, mbuf_t, *mut c_char, *mut protocol_family_t) -> errno_t;
pub type ifnet_add_proto_func =
    unsafe extern "C" fn(ifnet_t, protocol_family_t, *const c_void, u32) -> errno_t;
pub type ifnet_del_proto_func = unsafe extern "C" fn(ifnet_t, protocol_family_t) -> errno_t;
pub type ifnet_framer_func = unsafe extern "C" fn(
    ifnet_t,
    *mut mbuf_t,
    *const sockaddr,
    *const c_char,
    *const c_char,
) -> errno_t;
pub type ifnet_detached_func = unsafe extern "C" fn(ifnet_t);

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ifnet_init_params {
    pub uniqueid: *const c_void,
    pub uniqueid_len: u32,
    pub name: *const c_char,
    pub unit: u32,
    pub family: u32,
    pub type_: u32,
    pub output: Option<ifnet_output_func>,
    pub demux: Option<ifnet_demux_func>,
    pub add_proto: Option<ifnet_add_proto_func>,
    pub del_proto: Option<ifnet_del_proto_func>,
    pub check_multi: *const c_void,
    pub framer: Option<ifnet_framer_func>,
    pub softc: *mut c_void,
    pub ioctl: Option<ifnet_ioctl_func>,
    pub set_bpf_tap: *const c_void,
    pub detach: Option<ifnet_detached_func>,
    pub event: *const c_void,
    pub broadcast_addr: *const c_void,
    pub broadcast_len: u32,
}

/// `proto_plumb_handler` (bsd/net/kpi_protocol.h).
pub type proto_plumb_handler = unsafe extern "C" fn(ifnet_t, protocol_family_t) -> errno_t;
/// `proto_unplumb_handler` (bsd/net/kpi_protocol.h).
pub type proto_unplumb_handler = unsafe extern "C" fn(ifnet_t, protocol_family_t);

pub type proto_media_input =
    unsafe extern "C" fn(ifnet_t, protocol_family_t, mbuf_t, *mut c_char) -> errno_t;
pub type proto_media_preout = unsafe extern "C" fn(
    ifnet_t,
    protocol_family_t,
    *mut mbuf_t,
    *const sockaddr,
    *mut c_void,
    *mut c_char,
    *mut c_char,
) -> errno_t;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ifnet_attach_proto_param {
    pub demux_array: *const c_void,
    pub demux_count: u32,
    pub input: Option<proto_media_input>,
    pub pre_output: Option<proto_media_preout>,
    pub event: *const c_void,
    pub ioctl: *const c_void,
    pub detached: *const c_void,
    pub resolve: *const c_void,
    pub send_arp: *const c_void,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ifnet_stat_increment_param {
    pub packets_in: u32,
    pub bytes_in: u32,
    pub errors_in: u32,
    pub packets_out: u32,
    pub bytes_out: u32,
    pub errors_out: u32,
    pub collisions: u32,
    pub dropped: u32,
}

// The tables hold function and data pointers into the kext's static storage, shared by every
// simulated thread as the kernel shares them.
unsafe impl Send for cdevsw {}
unsafe impl Send for ifnet_init_params {}
unsafe impl Send for ifnet_attach_proto_param {}

const _: () = assert!(std::mem::size_of::<cdevsw>() == 112);
const _: () = assert!(std::mem::size_of::<kmod_info>() == 196);
const _: () = assert!(std::mem::offset_of!(kmod_info, start) == 180);
const _: () = assert!(std::mem::size_of::<ifnet_init_params>() == 144);
const _: () = assert!(std::mem::offset_of!(ifnet_init_params, softc) == 88);
const _: () = assert!(std::mem::size_of::<ifnet_attach_proto_param>() == 72);
const _: () = assert!(std::mem::size_of::<ifnet_stat_increment_param>() == 32);
const _: () = assert!(std::mem::size_of::<sockaddr>() == 16);
