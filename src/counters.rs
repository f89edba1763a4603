//! The per-unit counters of docs/tun-contract.md section 12, each named once: the list at the
//! bottom makes the plain snapshot ([`UnitCounters`]), the atomics ([`CounterCells`]) and the
//! debug dump's labels. The first seven mirror the interface statistics (`netstat -I tunN`);
//! the last three exist only here and in the dump. They start at 0 at load, survive close and
//! go away at unload.

use crate::kpi::ifnet::Ifnet;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident as $label:literal, )+) => {
        /// A unit's counters at one moment.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct UnitCounters {
            $( $(#[$doc])* pub $name: u64, )+
        }

        /// The counters of one unit, as atomics (relaxed: each is an independent statistic).
        pub struct CounterCells {
            $( $name: AtomicU64, )+
        }

        impl CounterCells {
            /// All zero.
            pub const fn new() -> CounterCells {
                CounterCells { $( $name: AtomicU64::new(0), )+ }
            }

            /// The values now.
            pub fn snapshot(&self) -> UnitCounters {
                UnitCounters { $( $name: self.$name.load(Relaxed), )+ }
            }

            /// Back to zero (load: counters start at 0 with the interface).
            pub fn reset(&self) {
                $( self.$name.store(0, Relaxed); )+
            }
        }

        impl UnitCounters {
            /// Each counter's label in the debug dump, and its value, in order.
            pub fn labelled(&self) -> impl Iterator<Item = (&'static str, u64)> {
                [$( ($label, self.$name), )+].into_iter()
            }
        }
    };
}

counters! {
    /// Packets written and handed to the stack (W9).
    ipackets as "ipackets",
    /// Their bytes, without the AF header.
    ibytes as "ibytes",
    /// Writes refused (W2..W6).
    ierrors as "ierrors",
    /// Packets the stack queued for the reader (O5).
    opackets as "opackets",
    /// Their bytes.
    obytes as "obytes",
    /// Output refused (O1..O4).
    oerrors as "oerrors",
    /// Writes dropped without an error (W7, W8): the interface's `iqdrops`.
    iqdrops as "iqdrops",
    /// Output packets refused because the queue was full (O4).
    queue_drops as "qdrops",
    /// Reads whose buffer was shorter than the framed packet (RD-2).
    truncated_reads as "truncated",
    /// Addresses close or unload could not remove (section 10 step 4).
    address_removal_failures as "addr-failures",
}

/// One event the counters record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// W9: a packet of `bytes` handed to the stack. The interface statistics get it through
    /// `ifnet_input`'s stats argument (WR-1), not through [`Count::to_ifnet`].
    Input {
        /// Packet length without the AF header.
        bytes: u32,
    },
    /// W2..W6.
    InputError,
    /// W7, W8.
    InputDrop,
    /// O5: a packet of `bytes` queued.
    Output {
        /// Packet length.
        bytes: u32,
    },
    /// O1..O3.
    OutputError,
    /// O4: an output error that is also a queue drop.
    QueueDrop,
    /// RD-2.
    TruncatedRead,
}

impl CounterCells {
    fn bump(cell: &AtomicU64, by: u64) {
        cell.fetch_add(by, Relaxed);
    }

    /// Records one event.
    pub fn add(&self, count: Count) {
        match count {
            Count::Input { bytes } => {
                Self::bump(&self.ipackets, 1);
                Self::bump(&self.ibytes, u64::from(bytes));
            }
            Count::InputError => Self::bump(&self.ierrors, 1),
            Count::InputDrop => Self::bump(&self.iqdrops, 1),
            Count::Output { bytes } => {
                Self::bump(&self.opackets, 1);
                Self::bump(&self.obytes, u64::from(bytes));
            }
            Count::OutputError => Self::bump(&self.oerrors, 1),
            Count::QueueDrop => {
                Self::bump(&self.oerrors, 1);
                Self::bump(&self.queue_drops, 1);
            }
            Count::TruncatedRead => Self::bump(&self.truncated_reads, 1),
        }
    }

    /// Records `n` addresses close or unload could not remove (section 10 step 4, ST-3).
    pub fn add_address_removal_failures(&self, n: u64) {
        Self::bump(&self.address_removal_failures, n);
    }
}

impl Count {
    /// Records the event in the interface statistics, where it appears there.
    pub fn to_ifnet(self, ifnet: &Ifnet) {
        match self {
            Count::InputError => ifnet.count_in(0, 0, 1),
            Count::InputDrop => ifnet.count_drop(),
            Count::Output { bytes } => ifnet.count_out(1, bytes, 0),
            Count::OutputError | Count::QueueDrop => ifnet.count_out(0, 0, 1),
            Count::Input { .. } | Count::TruncatedRead => {}
        }
    }
}

impl Default for CounterCells {
    fn default() -> Self {
        CounterCells::new()
    }
}

impl fmt::Display for UnitCounters {
    /// The debug dump: `label value` pairs, space-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (label, value)) in self.labelled().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{label} {value}")?;
        }
        Ok(())
    }
}
