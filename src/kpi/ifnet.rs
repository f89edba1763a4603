//! Network interfaces (xnu bsd/net/kpi_interface.h) and their BPF taps.

use super::errno::{check, Errno};
use super::mbuf::Mbuf;
use super::nodes::ShimTable;
use super::sys;
use core::ffi::c_void;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ops::Deref;
use core::ptr::NonNull;

/// One counted reference on an interface. `ifnet_allocate` gives the first; [`Clone`] takes
/// another (`ifnet_reference`) and dropping one gives it back (`ifnet_release`), so a handle
/// can never be used after its reference is gone, nor released twice. The kernel frees the
/// interface when the last reference goes and it is detached (xnu bsd/net/dlil.c,
/// `dlil_if_ref`/`dlil_if_free`).
#[derive(Debug)]
pub struct Ifnet(NonNull<sys::ifnet>);

// SAFETY: ifnets are reference-counted kernel objects usable from any thread.
unsafe impl Send for Ifnet {}
// SAFETY: as above; every accessor is a thread-safe KPI call.
unsafe impl Sync for Ifnet {}

bitflags::bitflags! {
    /// Interface flags (`if_flags`, bsd/net/if.h), as `ifnet_flags` returns them.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct IfFlags: u16 {
        /// Administratively up.
        const UP = sys::IFF_UP as u16;
        /// Broadcast capable.
        const BROADCAST = sys::IFF_BROADCAST as u16;
        /// Point-to-point link.
        const POINTOPOINT = sys::IFF_POINTOPOINT as u16;
        /// Resources allocated.
        const RUNNING = sys::IFF_RUNNING as u16;
        /// No address resolution.
        const NOARP = sys::IFF_NOARP as u16;
        /// Receives every frame (reference-counted by the stack; BPF, bridges).
        const PROMISC = sys::IFF_PROMISC as u16;
        /// Receives every multicast frame (reference-counted by the stack).
        const ALLMULTI = sys::IFF_ALLMULTI as u16;
        /// Cannot hear its own transmissions.
        const SIMPLEX = sys::IFF_SIMPLEX as u16;
        /// Multicast capable.
        const MULTICAST = sys::IFF_MULTICAST as u16;
    }
}

/// Address families the driver carries (Darwin numbers).
pub const AF_INET: u32 = sys::AF_INET;
/// IPv6 (Darwin's 30, not FreeBSD's 28).
pub const AF_INET6: u32 = sys::AF_INET6;
/// BPF link type of a 4-byte host-order address family header (bsd/net/bpf.h).
pub const DLT_NULL: u32 = sys::DLT_NULL;
/// BPF link type of Ethernet frames, 14-byte header (bsd/net/bpf.h).
pub const DLT_EN10MB: u32 = sys::DLT_EN10MB;
/// `IFT_OTHER` (bsd/net/if_types.h): the type of a point-to-point tunnel interface.
pub const IFT_OTHER: u8 = sys::IFT_OTHER as u8;
/// `IFT_ETHER` (bsd/net/if_types.h).
pub const IFT_ETHER: u8 = sys::IFT_ETHER as u8;

/// An interface the kernel passed to a callback, borrowed for that call: the caller's
/// reference keeps it alive, so no reference is taken or given back. Dereferences to
/// [`Ifnet`]; `clone()` that to keep the interface beyond the call.
pub struct IfnetRef<'call> {
    ifnet: ManuallyDrop<Ifnet>,
    _call: PhantomData<&'call sys::ifnet>,
}

impl Deref for IfnetRef<'_> {
    type Target = Ifnet;
    fn deref(&self) -> &Ifnet {
        &self.ifnet
    }
}

impl IfnetRef<'_> {
    /// Borrows `raw` for one callback.
    ///
    /// # Safety
    /// `raw` must be NULL or an ifnet that stays referenced for the lifetime chosen.
    pub(super) unsafe fn new<'call>(raw: *mut sys::ifnet) -> Option<IfnetRef<'call>> {
        NonNull::new(raw).map(|raw| IfnetRef {
            ifnet: ManuallyDrop::new(Ifnet(raw)),
            _call: PhantomData,
        })
    }
}

impl Clone for Ifnet {
    /// Takes another reference (`ifnet_reference`).
    fn clone(&self) -> Ifnet {
        // SAFETY: `self` holds a reference, so the ifnet is live; the count goes up by one
        // and the new handle gives it back on drop.
        let _ = unsafe { sys::ifnet_reference(self.raw()) };
        Ifnet(self.0)
    }
}

impl Drop for Ifnet {
    /// Gives the reference back (`ifnet_release`).
    fn drop(&mut self) {
        // SAFETY: this handle's own reference, given back once.
        let _ = unsafe { sys::ifnet_release(self.raw()) };
    }
}

impl PartialEq for Ifnet {
    /// The same interface.
    fn eq(&self, other: &Ifnet) -> bool {
        self.0 == other.0
    }
}

impl Eq for Ifnet {}

impl Ifnet {
    pub(super) fn raw(&self) -> sys::ifnet_t {
        self.0.as_ptr()
    }

    /// Allocates interface `unit` with the parameters of the shim's `table` and `softc`; the
    /// handle holds the reference `ifnet_allocate` returns.
    pub fn allocate(table: ShimTable, unit: u32, softc: usize) -> Result<Ifnet, Errno> {
        let mut ifp: sys::ifnet_t = core::ptr::null_mut();
        // SAFETY: `ifp` is a valid out-pointer; softc is an opaque integer the kernel stores.
        check(unsafe {
            sys::tun_shim_ifnet_allocate(table.raw(), unit, softc as *mut c_void, &mut ifp)
        })?;
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

    /// Attaches an Ethernet interface with link address `mac` (the shim builds the
    /// `sockaddr_dl`: `AF_LINK`, no name, six address bytes).
    pub fn attach_ethernet(&self, mac: &[u8; 6]) -> Result<(), Errno> {
        // SAFETY: live ifnet; the shim reads the six bytes during the call.
        check(unsafe { sys::tun_shim_attach_ethernet(self.raw(), mac.as_ptr()) })
    }

    /// Sets the link-header length (`ifnet_set_hdrlen`).
    pub fn set_hdrlen(&self, len: u8) {
        // SAFETY: live ifnet.
        let _ = unsafe { sys::ifnet_set_hdrlen(self.raw(), len) };
    }

    /// Changes the link address (`ifnet_set_lladdr`, which posts
    /// `KEV_DL_LINK_ADDRESS_CHANGED` synchronously: the stack may call back into `output`).
    pub fn set_lladdr(&self, mac: &[u8; 6]) -> Result<(), Errno> {
        // SAFETY: live ifnet; the kernel copies the six bytes during the call.
        check(unsafe { sys::ifnet_set_lladdr(self.raw(), mac.as_ptr().cast(), mac.len()) })
    }

    /// Posts `KEV_DL_LINK_ON` (`up`) or `KEV_DL_LINK_OFF` for interface `unit` of the shim's
    /// `table` (`ifnet_event`, delivered synchronously: hold no lock the stack's handlers may
    /// need, such as one the interface ioctl takes).
    pub fn post_link_event(&self, table: ShimTable, unit: u32, up: bool) {
        let code = if up {
            sys::KEV_DL_LINK_ON
        } else {
            sys::KEV_DL_LINK_OFF
        };
        // SAFETY: live ifnet; the shim builds the event on its stack for the call.
        let _ = unsafe { sys::tun_shim_link_event(table.raw(), self.raw(), unit, code) };
    }

    /// Attaches BPF with link type `dlt`, whose header is `header_len` bytes.
    pub fn bpf_attach(&self, dlt: u32, header_len: u32) {
        // SAFETY: live, attached ifnet.
        unsafe { sys::bpfattach(self.raw(), dlt, header_len) };
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

    /// The interface flags, read live.
    pub fn flags(&self) -> IfFlags {
        // SAFETY: live ifnet.
        IfFlags::from_bits_retain(unsafe { sys::ifnet_flags(self.raw()) })
    }

    /// Sets the bits of `mask` to those of `value`.
    pub fn set_flags(&self, value: IfFlags, mask: IfFlags) {
        // SAFETY: live ifnet.
        let _ = unsafe { sys::ifnet_set_flags(self.raw(), value.bits(), mask.bits()) };
    }

    /// Whether `IFF_UP` is set.
    pub fn is_up(&self) -> bool {
        self.flags().contains(IfFlags::UP)
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

    /// Shows an inbound packet to BPF, with the link header `header` of the attached type.
    pub fn tap_in(&self, packet: &Mbuf, dlt: u32, header: &[u8]) {
        // SAFETY: BPF copies the header and packet during the call and writes neither.
        unsafe {
            sys::bpf_tap_in(
                self.raw(),
                dlt,
                packet.raw(),
                header.as_ptr().cast_mut().cast(),
                header.len(),
            )
        };
    }

    /// Shows an outbound packet to BPF, with the link header `header` of the attached type.
    pub fn tap_out(&self, packet: &Mbuf, dlt: u32, header: &[u8]) {
        // SAFETY: BPF copies the header and packet during the call and writes neither.
        unsafe {
            sys::bpf_tap_out(
                self.raw(),
                dlt,
                packet.raw(),
                header.as_ptr().cast_mut().cast(),
                header.len(),
            )
        };
    }
}

/// Hands a packet the driver demuxed to protocol `family`'s input (`proto_input`), which
/// takes it whatever it answers.
pub fn proto_input(family: u32, packet: Mbuf) -> Result<(), Errno> {
    // SAFETY: the packet is ours and passes to the stack.
    check(unsafe { sys::proto_input(family, packet.into_raw()) })
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
