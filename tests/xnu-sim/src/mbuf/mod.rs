//! mbufs (xnu bsd/sys/kpi_mbuf.h): every mbuf is a tracked handle; chains are fragmented at
//! random; freed mbufs are poisoned and quarantined so a stale handle is caught.
//!
//! One file per concern: the handle store and its leak counts (`store`), allocation and
//! segment geometry (`alloc`), data access, copies and reshaping (`data`), the packet header
//! (`pkthdr`), packet tags (`tags`) and the link-layer view of a frame (`frame`).

mod alloc;
mod data;
mod frame;
mod pkthdr;
mod store;
mod tags;

pub use alloc::{
    xnu_segment_capacities, M16KCLBYTES, MBIGCLBYTES, MCLBYTES, MHLEN, MINCLSIZE, MLEN,
};
pub use frame::{M_BCAST, M_LOOP, M_MCAST, M_PROMISC};
pub use store::{live_mbufs, mbufs_allocated};
pub use tags::tag_count;

pub(crate) use alloc::{free_chain, packet_from};
pub(crate) use data::{check_packet_len, packet_bytes};
pub(crate) use frame::{
    first_len, flags, header_bytes, header_lead, peek_first, remove_vlan_encap, set_flags,
    write_front,
};
pub(crate) use pkthdr::rcvif;
