//! The network KPI (xnu bsd/net), one file per XNU source file it imitates: interfaces
//! (`kpi_interface`: kpi_interface.c), the data-link layer's delivery, protocol attachment and
//! ioctl dispatch (`dlil`: dlil.c), BPF (`bpf`: bpf.c), protocol input and plumbers
//! (`kpi_protocol`: kpi_protocol.c) and interface address lists (`ifaddr`: the address-list
//! part of kpi_interface.c). Tests observe it through [`crate::netinspect`] and drive it
//! through [`crate::stack`].
//!
//! Driver callbacks are never called with a simulator lock held.

pub(crate) mod bpf;
pub(crate) mod dlil;
pub(crate) mod ifaddr;
pub(crate) mod kpi_interface;
pub(crate) mod kpi_protocol;
