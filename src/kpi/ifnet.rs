//! Network interfaces (xnu bsd/net/kpi_interface.h) and their BPF taps.

use super::mbuf::Mbuf;
use super::sys;
use crate::errno::{check, Errno};
use core::ffi::c_void;
use core::ptr::NonNull;

/// A handle on an interface. The driver holds the reference `ifnet_allocate` returned until
/// [`Ifnet::release`] at unload; copies of the handle are borrowed under that reference.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ifnet(NonNull<sys::ifnet>);

// SAFETY: ifnets are reference-counted kernel objects usable from any thread.
unsafe impl Send for Ifnet {}
// SAFETY: as above; every accessor is a thread-safe KPI call.
unsafe impl Sync for Ifnet {}

/// Interface flag bits (net/if.h).
pub mod flags {
    use super::sys;
    /// Administratively up.
    pub const UP: u16 = sys::IFF_UP as u16;
    /// Broadcast capable.
    pub const BROADCAST: u16 = sys::IFF_BROADCAST as u16;
    /// Point-to-point link.
    pub const POINTOPOINT: u16 = sys::IFF_POINTOPOINT as u16;
    /// Resources allocated.
    pub const RUNNING: u16 = sys::IFF_RUNNING as u16;
    /// No address resolution.
    pub const NOARP: u16 = sys::IFF_NOARP as u16;
    /// Multicast capable.
    pub const MULTICAST: u16 = sys::IFF_MULTICAST as u16;
}

/// Address families the driver carries (Darwin numbers).
pub const AF_INET: u32 = sys::AF_INET;
/// IPv6 (Darwin's 30, not FreeBSD's 28).
pub const AF_INET6: u32 = sys::AF_INET6;

impl Ifnet {
    /// Wraps a handle the kernel passed to a callback.
    ///
    /// # Safety
    /// `raw` must be a live ifnet for the duration of the callback.
    pub unsafe fn from_raw(raw: sys::ifnet_t) -> Option<Ifnet> {
        NonNull::new(raw).map(Ifnet)
    }

    pub(super) fn raw(&self) -> sys::ifnet_t {
        self.0.as_ptr()
    }

    /// Allocates interface `tun<unit>` with the driver's callbacks (shim) and `softc`.
    pub fn allocate(unit: u32, softc: usize) -> Result<Ifnet, Errno> {
        let mut ifp: sys::ifnet_t = core::ptr::null_mut();
        // SAFETY: `ifp` is a valid out-pointer; softc is an opaque integer the kernel stores.
        check(unsafe { sys::tun_shim_ifnet_allocate(unit, softc as *mut c_void, &mut ifp) })?;
        NonNull::new(ifp).map(Ifnet).ok_or(Errno::ENOMEM)
    }

    /// The softc given at allocation.
    pub fn softc(&self) -> usize {
        // SAFETY: live ifnet.
        unsafe { sys::ifnet_softc(self.raw()) as usize }
    }

    /// Attaches the interface to the stack (no link-layer address).
    pub fn attach(&self) -> Result<(), Errno> {
        // SAFETY: live ifnet; NULL ll_addr is allowed for interfaces without one.
        check(unsafe { sys::ifnet_attach(self.raw(), core::ptr::null()) })
    }

    /// Attaches BPF with a `DLT_NULL` 4-byte header (contract U-9).
    pub fn bpf_attach(&self) {
        // SAFETY: live, attached ifnet.
        unsafe {
            sys::bpfattach(
                self.raw(),
                sys::DLT_NULL,
                crate::limits::AF_HEADER_LEN as u32,
            )
        };
    }

    /// Attaches protocol `family` to this interface only (contract U-8).
    pub fn attach_protocol(&self, family: u32) -> Result<(), Errno> {
        // SAFETY: live ifnet; the shim fills the protocol callbacks.
        check(unsafe { sys::tun_shim_attach_protocol(self.raw(), family) })
    }

    /// Detaches protocol `family`: `ENXIO` when it is not attached.
    pub fn detach_protocol(&self, family: u32) -> Result<(), Errno> {
        // SAFETY: live ifnet.
        check(unsafe { sys::ifnet_detach_protocol(self.raw(), family) })
    }

    /// Starts detaching; the `detached` callback fires later, on another thread.
    pub fn detach(&self) -> Result<(), Errno> {
        // SAFETY: live, attached ifnet.
        check(unsafe { sys::ifnet_detach(self.raw()) })
    }

    /// Drops the driver's reference. The handle must not be used afterwards.
    pub fn release(self) {
        // SAFETY: the driver's own reference from ifnet_allocate, released once.
        let _ = unsafe { sys::ifnet_release(self.raw()) };
    }

    /// The interface flags, read live.
    pub fn flags(&self) -> u16 {
        // SAFETY: live ifnet.
        unsafe { sys::ifnet_flags(self.raw()) }
    }

    /// Sets the bits of `mask` to those of `value`.
    pub fn set_flags(&self, value: u16, mask: u16) {
        // SAFETY: live ifnet.
        let _ = unsafe { sys::ifnet_set_flags(self.raw(), value, mask) };
    }

    /// Whether `IFF_UP` is set.
    pub fn is_up(&self) -> bool {
        self.flags() & flags::UP != 0
    }

    /// The MTU.
    pub fn mtu(&self) -> u32 {
        // SAFETY: live ifnet.
        unsafe { sys::ifnet_mtu(self.raw()) }
    }

    /// Sets the MTU.
    pub fn set_mtu(&self, mtu: u32) {
        // SAFETY: live ifnet.
        let _ = unsafe { sys::ifnet_set_mtu(self.raw(), mtu) };
    }

    /// The link speed in bits per second (0 = unknown).
    pub fn baudrate(&self) -> u64 {
        // SAFETY: live ifnet.
        unsafe { sys::ifnet_baudrate(self.raw()) }
    }

    /// Sets the link speed.
    pub fn set_baudrate(&self, baudrate: u64) {
        // SAFETY: live ifnet.
        let _ = unsafe { sys::ifnet_set_baudrate(self.raw(), baudrate) };
    }

    /// Hands one received packet to the stack, counting it in the interface statistics.
    pub fn input(&self, packet: Mbuf, bytes: u32) -> Result<(), Errno> {
        let stats = sys::ifnet_stat_increment_param {
            packets_in: 1,
            bytes_in: bytes,
            ..Default::default()
        };
        // SAFETY: the kernel takes ownership of the packet whatever it returns.
        check(unsafe { sys::ifnet_input(self.raw(), packet.into_raw(), &stats) })
    }

    /// Counts input packets, bytes and errors.
    pub fn count_in(&self, packets: u32, bytes: u32, errors: u32) {
        // SAFETY: live ifnet.
        let _ = unsafe { sys::ifnet_stat_increment_in(self.raw(), packets, bytes, errors) };
    }

    /// Counts one input packet dropped by the driver (`iqdrops`).
    pub fn count_drop(&self) {
        let stats = sys::ifnet_stat_increment_param {
            dropped: 1,
            ..Default::default()
        };
        // SAFETY: live ifnet; the kernel reads the parameter during the call.
        let _ = unsafe { sys::ifnet_stat_increment(self.raw(), &stats) };
    }

    /// Counts output packets, bytes and errors.
    pub fn count_out(&self, packets: u32, bytes: u32, errors: u32) {
        // SAFETY: live ifnet.
        let _ = unsafe { sys::ifnet_stat_increment_out(self.raw(), packets, bytes, errors) };
    }

    /// Shows an inbound packet to BPF with the `DLT_NULL` header (host-order family).
    pub fn tap_in(&self, packet: &Mbuf, family: u32) {
        let mut header = family.to_ne_bytes();
        // SAFETY: BPF copies the header and packet during the call.
        unsafe {
            sys::bpf_tap_in(
                self.raw(),
                sys::DLT_NULL,
                packet.raw(),
                header.as_mut_ptr().cast(),
                4,
            )
        };
    }

    /// Shows an outbound packet to BPF with the `DLT_NULL` header (host-order family).
    pub fn tap_out(&self, packet: &Mbuf, family: u32) {
        let mut header = family.to_ne_bytes();
        // SAFETY: BPF copies the header and packet during the call.
        unsafe {
            sys::bpf_tap_out(
                self.raw(),
                sys::DLT_NULL,
                packet.raw(),
                header.as_mut_ptr().cast(),
                4,
            )
        };
    }
}

/// Registers the plumber through which the stack attaches protocol `family` to every tun
/// interface (`proto_register_plumber` for (`family`, `IFNET_FAMILY_TUN`)); `EEXIST` when
/// another driver registered it first.
pub fn register_plumber(family: u32) -> Result<(), Errno> {
    // SAFETY: the shim passes its own C-made callback pointers.
    check(unsafe { sys::tun_shim_register_plumber(family) })
}

/// Unregisters that plumber (`proto_unregister_plumber`, which cannot fail).
pub fn unregister_plumber(family: u32) {
    // SAFETY: a plain KPI call; unregistering an absent plumber does nothing.
    unsafe { sys::tun_shim_unregister_plumber(family) };
}
