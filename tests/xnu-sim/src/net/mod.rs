//! The network KPI (xnu bsd/net), one file per XNU source file (or concern) it imitates:
//! interfaces (`kpi_interface`: kpi_interface.c), the data-link layer's delivery, protocol
//! attachment and ioctl dispatch (`dlil`: dlil.c) and its output (`dlil_output`), interface
//! events (`event`: dlil.c `dlil_event_internal`), BPF (`bpf`: bpf.c), protocol input and
//! plumbers (`kpi_protocol`: kpi_protocol.c), interface address lists (`ifaddr`: the
//! address-list part of kpi_interface.c), the link layer (`lladdr`: link address, header
//! length, promiscuous mode), Ethernet (`ether`: ether_if_module.c; `ether_inet`,
//! `ether_inet6`: ether_inet_pr_module.c, ether_inet6_pr_module.c), neighbour resolution
//! (`arp`: in_arp.c; `nd`: nd6.c, nd6_nbr.c), bridge members (`bridge`: if_bridge.c), VLAN
//! parents (`vlan`: if_vlan.c) and the frame-level view of Ethernet interfaces (`frames`).
//! Tests observe it through [`crate::netinspect`] and drive it through [`crate::stack`] and
//! [`crate::link`].
//!
//! Driver callbacks are never called with a simulator lock held.

pub(crate) mod arp;
pub(crate) mod bpf;
pub(crate) mod bridge;
pub(crate) mod dlil;
pub(crate) mod dlil_output;
pub(crate) mod ether;
pub(crate) mod ether_inet;
pub(crate) mod ether_inet6;
pub(crate) mod event;
pub(crate) mod frames;
pub(crate) mod ifaddr;
pub(crate) mod kpi_interface;
pub(crate) mod kpi_protocol;
pub(crate) mod lladdr;
pub(crate) mod nd;
pub(crate) mod vlan;
