//! Sizes and offsets of the structs shared with the kernel, pinned from Apple's headers and
//! not from `shim/kpi.h`: the generated types are checked against them, so a wrong field in
//! `kpi.h` fails the simulator's build as well as the shim's own `_Static_assert`s.

use super::sys;
use std::mem::{offset_of, size_of};

// xnu bsd/sys/conf.h `struct cdevsw`: 13 pointers and an int, 112 bytes on x86_64.
const _: () = assert!(size_of::<sys::cdevsw>() == 112);
const _: () = assert!(offset_of!(sys::cdevsw, d_select) == 64);
const _: () = assert!(offset_of!(sys::cdevsw, d_type) == 104);

// xnu osfmk/mach/kmod.h `kmod_info_t`, under `#pragma pack(4)`: 196 bytes.
const _: () = assert!(size_of::<sys::kmod_info>() == 196);
const _: () = assert!(offset_of!(sys::kmod_info, name) == 16);
const _: () = assert!(offset_of!(sys::kmod_info, address) == 156);
const _: () = assert!(offset_of!(sys::kmod_info, start) == 180);

// xnu bsd/net/kpi_interface.h `struct ifnet_init_params`.
const _: () = assert!(size_of::<sys::ifnet_init_params>() == 144);
const _: () = assert!(offset_of!(sys::ifnet_init_params, softc) == 88);

// xnu bsd/net/kpi_interface.h `struct ifnet_attach_proto_param`.
const _: () = assert!(size_of::<sys::ifnet_attach_proto_param>() == 72);

// xnu bsd/net/kpi_interface.h `struct ifnet_stat_increment_param`: eight u_int32_t.
const _: () = assert!(size_of::<sys::ifnet_stat_increment_param>() == 32);

// xnu bsd/sys/socket.h `struct sockaddr`.
const _: () = assert!(size_of::<sys::sockaddr>() == 16);

// xnu bsd/sys/_types/_timespec.h `struct timespec` on LP64.
const _: () = assert!(size_of::<sys::timespec>() == 16);

// xnu bsd/sys/_types.h: `__darwin_dev_t` is `__int32_t`.
const _: () = assert!(size_of::<sys::dev_t>() == 4);

// xnu bsd/net/if_dl.h `struct sockaddr_dl` with its 12-byte minimum work area.
const _: () = assert!(size_of::<sys::sockaddr_dl>() == 20);
const _: () = assert!(offset_of!(sys::sockaddr_dl, sdl_data) == 8);

// xnu bsd/sys/kern_event.h `struct kern_event_msg`: six u_int32_t, then the data words.
const _: () = assert!(size_of::<sys::kern_event_msg>() == 28);
const _: () = assert!(offset_of!(sys::kern_event_msg, event_data) == 24);

// xnu bsd/net/if_var.h `struct net_event_data`: family, unit, IFNAMSIZ name bytes.
const _: () = assert!(size_of::<sys::net_event_data>() == 24);
