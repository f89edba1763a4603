//! The link layer of Ethernet interfaces as users and the rest of the kernel drive it (the
//! counterpart of [`crate::stack`] for tap units, docs/tap-contract.md section 17): the
//! link-address ioctls (`ifconfig tapN lladdr M`), promiscuous mode (BPF, bridges), bridge
//! membership (`ifconfig bridgeX addm tapN`), VLAN configuration over a parent, the media
//! ioctl, and the stack's ARP and neighbour tables. Every call into the driver happens the way
//! XNU makes it (bsd/net/if.c `ifioctl_ifreq`, bsd/net/dlil.c `ifnet_ioctl`), on the caller's
//! thread.

use crate::abi::*;
use crate::errno::{check, Errno};
use crate::net::{arp, bridge, dlil, lladdr, nd, vlan};
use crate::proc;

pub use crate::net::bridge::SIOCGIFMEDIA64;
pub use crate::net::vlan::{DevMtu, SIOCGIFDEVMTU};

/// `SIOCSIFLLADDR` (bsd/sys/sockio.h `_IOW('i', 60, struct ifreq)`).
pub const SIOCSIFLLADDR: u32 = 0x8020_693c;
/// `SIOCGIFLLADDR` (bsd/sys/sockio.h `_IOWR('i', 158, struct ifreq)`).
pub const SIOCGIFLLADDR: u32 = 0xc020_699e;

/// What the driver reported for `SIOCGIFMEDIA64` (`struct ifmediareq64`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Media {
    /// `ifm_current`.
    pub current: i32,
    /// `ifm_mask`.
    pub mask: i32,
    /// `ifm_status` (`IFM_AVALID` 1, `IFM_ACTIVE` 2).
    pub status: i32,
    /// `ifm_active`.
    pub active: i32,
    /// `ifm_count`.
    pub count: i32,
}

fn attached(name: &str) -> Result<dlil::IoRef, Errno> {
    dlil::io_ref(name)
}

fn ifreq(name: &str) -> [u8; 32] {
    let mut req = [0u8; 32];
    let n = name.len().min(15);
    req[..n].copy_from_slice(&name.as_bytes()[..n]);
    req
}

/// `ifconfig NAME lladdr M`: `SIOCSIFLLADDR` with `ifr_addr` = {`sa_len` = the address length,
/// `AF_LINK`, the address}, as [`set_lladdr_sockaddr`] sends it.
pub fn set_lladdr(name: &str, addr: &[u8]) -> Result<(), Errno> {
    set_lladdr_sockaddr(name, addr.len() as u8, AF_LINK as u8, addr)
}

/// `SIOCSIFLLADDR` with the given `ifr_addr` fields (for malformed requests): `EPERM` unless
/// the caller is root (`proc_suser`), then `ifnet_ioctl` with the socket's domain (`AF_INET`):
/// the IPv4 protocol, when attached, answers `EOPNOTSUPP`, then the driver's ioctl, which
/// calls `ifnet_set_lladdr` (bsd/net/if.c `ifioctl_ifreq`). `data` fills `sa_data` (at most 14
/// bytes).
pub fn set_lladdr_sockaddr(
    name: &str,
    sa_len: u8,
    sa_family: u8,
    data: &[u8],
) -> Result<(), Errno> {
    let io = attached(name)?;
    if proc::uid_of(proc::current_pid()) != 0 {
        return Err(Errno::EPERM);
    }
    let mut req = ifreq(name);
    req[16] = sa_len;
    req[17] = sa_family;
    let n = data.len().min(14);
    req[18..18 + n].copy_from_slice(&data[..n]);
    check(dlil::ifnet_ioctl(
        io.ifp(),
        AF_INET,
        SIOCSIFLLADDR,
        req.as_mut_ptr().cast(),
    ))
}

/// `SIOCGIFLLADDR` (bsd/net/if.c `ifioctl_ifreq`, no driver code): `EADDRNOTAVAIL` when the
/// interface has no link address, else its bytes (`ifr_addr`: `AF_LINK`, `sa_len` the length).
pub fn get_lladdr(name: &str) -> Result<Vec<u8>, Errno> {
    let io = attached(name)?;
    let addr = lladdr::address(io.ifp());
    if addr.is_empty() {
        return Err(Errno::EADDRNOTAVAIL);
    }
    if addr.len() > 14 {
        return Err(Errno::EMSGSIZE);
    }
    Ok(addr)
}

/// `ifnet_set_promiscuous(ifp, on)` (bsd/net/if.c), as BPF (`BIOCPROMISC`) or a bridge calls
/// it: the reference-counted `IFF_PROMISC`, and `SIOCSIFFLAGS` with NULL to the driver only
/// while the interface is up, reverted when the driver fails it.
pub fn set_promiscuous(name: &str, on: bool) -> Result<(), Errno> {
    let io = attached(name)?;
    lladdr::set_promiscuous(io.ifp(), on)
}

/// `ifconfig bridgeX addm NAME` (bsd/net/if_bridge.c `bridge_ioctl_add`): promiscuous mode
/// and the media read (`SIOCGIFMEDIA64`); `EEXIST` for a member, `EINVAL` unless `IFT_ETHER`.
pub fn bridge_add_member(name: &str) -> Result<(), Errno> {
    let io = attached(name)?;
    bridge::add(io.ifp())
}

/// `ifconfig bridgeX deletem NAME` (`bridge_delete_member`): the promiscuous request goes
/// back; `ENOENT` for an interface that is not a member.
pub fn bridge_remove_member(name: &str) -> Result<(), Errno> {
    let io = attached(name)?;
    bridge::remove(io.ifp())
}

/// `ifconfig vlanX vlan N vlandev NAME` (bsd/net/if_vlan.c `vlan_parent_create`): the
/// parent's `SIOCGIFDEVMTU`; its error fails the configuration.
pub fn vlan_configure(parent: &str) -> Result<DevMtu, Errno> {
    let io = attached(parent)?;
    vlan::parent_create(io.ifp())
}

/// `ifconfig NAME` reading the media (`SIOCGIFMEDIA64` through `ifnet_ioctl` with the
/// socket's domain; a zeroed request whose `ifm_ulist` is NULL).
pub fn media(name: &str) -> Result<Media, Errno> {
    let io = attached(name)?;
    let mut req = ifreq(name).to_vec();
    req.resize(44, 0);
    check(dlil::ifnet_ioctl(
        io.ifp(),
        AF_INET,
        SIOCGIFMEDIA64,
        req.as_mut_ptr().cast(),
    ))?;
    let word = |at: usize| i32::from_ne_bytes(req[at..at + 4].try_into().expect("4 bytes"));
    Ok(Media {
        current: word(16),
        mask: word(20),
        status: word(24),
        active: word(28),
        count: word(32),
    })
}

/// `arp -s`: sets the ARP entry for `ip` on `name` (a packet kept for it is sent).
pub fn arp_set(name: &str, ip: [u8; 4], mac: [u8; 6]) -> Result<(), Errno> {
    let io = attached(name)?;
    arp::set(io.ifp(), ip, mac);
    Ok(())
}

/// The ARP entry for `ip` on `name`, once resolved.
pub fn arp_entry(name: &str, ip: [u8; 4]) -> Option<[u8; 6]> {
    let io = attached(name).ok()?;
    arp::entry(io.ifp(), ip)
}

/// `ndp -s`: sets the neighbour-cache entry for `ip` on `name` (a packet kept for it is sent).
pub fn nd_set(name: &str, ip: [u8; 16], mac: [u8; 6]) -> Result<(), Errno> {
    let io = attached(name)?;
    nd::set(io.ifp(), ip, mac);
    Ok(())
}

/// The neighbour-cache entry for `ip` on `name`, once resolved.
pub fn nd_entry(name: &str, ip: [u8; 16]) -> Option<[u8; 6]> {
    let io = attached(name).ok()?;
    nd::entry(io.ifp(), ip)
}
