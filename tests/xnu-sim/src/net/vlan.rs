//! A VLAN interface over an Ethernet parent (xnu bsd/net/if_vlan.c `vlan_parent_create` →
//! `siocgifdevmtu`): configuring `vlanX` on a parent first asks the parent's driver for its
//! device MTU with `SIOCGIFDEVMTU` (through `ifnet_ioctl`, protocol 0) and fails the
//! configuration with the driver's error (contract TN-6). The VLAN interface itself, its
//! protocol attachment and its `SIOCSIFALTMTU` calls are not modelled.

use crate::abi::*;
use crate::errno::{check, Errno};
use crate::net::dlil;

/// `SIOCGIFDEVMTU` (bsd/sys/sockio.h `_IOWR('i', 68, struct ifreq)`).
pub const SIOCGIFDEVMTU: u32 = 0xc020_6944;

/// `struct ifdevmtu` (bsd/net/if.h), as the parent's driver reported it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DevMtu {
    /// `ifdm_current`.
    pub current: i32,
    /// `ifdm_min`.
    pub min: i32,
    /// `ifdm_max`.
    pub max: i32,
}

/// `vlan_parent_create` (if_vlan.c): `SIOCGIFDEVMTU` on a zeroed `struct ifreq` (32 bytes,
/// `ifr_devmtu` at offset 16); the driver's error fails the VLAN configuration.
pub(crate) fn parent_create(parent: ifnet_t) -> Result<DevMtu, Errno> {
    let mut ifr = [0u8; 32];
    check(dlil::ifnet_ioctl(
        parent,
        0,
        SIOCGIFDEVMTU,
        ifr.as_mut_ptr().cast(),
    ))?;
    let word = |at: usize| i32::from_ne_bytes(ifr[at..at + 4].try_into().expect("4 bytes"));
    Ok(DevMtu {
        current: word(16),
        min: word(20),
        max: word(24),
    })
}
