//! Per-unit state: one `/dev/tunN` and its interface `tunN`.
//!
//! Lock coverage: every field of [`UnitState`] is guarded by the unit's kernel mutex
//! ([`Unit::state`]). Readers sleep on that mutex (msleep interlock) with the unit's address as
//! the channel, so the emptiness check and the sleep are atomic with respect to enqueue (RD-5).
//! Lock order: the driver's global mutex before a unit mutex; never the reverse. No unit mutex
//! is held across a call that can re-enter the driver (`ifnet_input`, `ifnet_attach`,
//! protocol attach, `ifnet_detach`).

use crate::driver;
use crate::errno::Errno;
use crate::framing::Framing;
use crate::kpi::ifnet::Ifnet;
use crate::kpi::lock::{wakeup, Channel, Interruptible, KGuard, KMutex};
use crate::kpi::select::SelInfo;
use crate::limits::TUN_UNITS;
use crate::queue::{PacketQueue, QueuedPacket};

/// How far the unit's interface has been built (contract U-4, U-5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Setup {
    /// `ifnet_attach` succeeded (a detached ifnet can never be attached again).
    pub attached: bool,
    /// BPF attached with `DLT_NULL`.
    pub bpf: bool,
    /// `PF_INET` attached to this interface.
    pub inet: bool,
    /// `PF_INET6` attached to this interface.
    pub inet6: bool,
}

impl Setup {
    /// Every step done.
    pub fn is_complete(&self) -> bool {
        self.attached && self.bpf && self.inet && self.inet6
    }
}

/// Counters the interface statistics do not carry (tun-contract.md section 12).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnitCounters {
    /// Reads whose buffer was shorter than the framed packet (RD-2).
    pub truncated_reads: u64,
    /// Output packets refused because the queue was full (O4).
    pub queue_drops: u64,
}

/// The state of one unit. Guarded by the unit mutex (see the module doc).
pub struct UnitState {
    /// An open is building the interface; the unit is claimed (a second open → `EBUSY`).
    pub opening: bool,
    /// `d_open` succeeded and `d_close` has not run.
    pub open: bool,
    /// The opener's pid (or the `TUNSIFPID` caller's); 0 when closed.
    pub pid: i32,
    /// `FIONBIO`: reads never sleep.
    pub nonblocking: bool,
    /// `FIOASYNC`: `SIGIO` on enqueue.
    pub async_io: bool,
    /// The framing mode.
    pub framing: Framing,
    /// Packets waiting for a reader.
    pub queue: PacketQueue,
    /// The interface, from the first open until unload.
    pub ifnet: Option<Ifnet>,
    /// How far the interface is built.
    pub setup: Setup,
    /// The interface's `detached` callback has run (unload waits for it).
    pub detached: bool,
    /// `select(2)` records.
    pub sel: SelInfo,
    /// Driver-only counters.
    pub counters: UnitCounters,
}

impl UnitState {
    /// A unit that was never opened.
    pub const fn new() -> UnitState {
        UnitState {
            opening: false,
            open: false,
            pid: 0,
            nonblocking: false,
            async_io: false,
            framing: Framing::Raw,
            queue: PacketQueue::new(),
            ifnet: None,
            setup: Setup {
                attached: false,
                bpf: false,
                inet: false,
                inet6: false,
            },
            detached: false,
            sel: SelInfo::new(),
            counters: UnitCounters {
                truncated_reads: 0,
                queue_drops: 0,
            },
        }
    }

    /// Restores what a new opener must see (close, tun-contract.md section 10 step 5).
    pub fn reset_modes(&mut self) {
        self.pid = 0;
        self.nonblocking = false;
        self.async_io = false;
        self.framing = Framing::Raw;
    }
}

impl Default for UnitState {
    fn default() -> Self {
        UnitState::new()
    }
}

/// One unit: its state behind its kernel mutex.
pub struct Unit {
    /// The unit's state; see the module doc for lock coverage.
    pub state: KMutex<UnitState>,
}

/// Every unit, in static storage: unit N is `UNITS[N]`.
pub static UNITS: [Unit; TUN_UNITS] = [const {
    Unit {
        state: KMutex::new(UnitState::new()),
    }
}; TUN_UNITS];

impl Unit {
    /// The unit for a device minor number.
    pub fn get(minor: u32) -> Result<&'static Unit, Errno> {
        UNITS.get(minor as usize).ok_or(Errno::ENXIO)
    }

    /// The unit's number.
    pub fn number(&'static self) -> usize {
        UNITS
            .iter()
            .position(|u| core::ptr::eq(u, self))
            .expect("unit in UNITS")
    }

    /// The channel readers and unload sleep on.
    pub fn channel(&self) -> Channel {
        Channel::of(self)
    }

    /// Wakes sleeping readers and selectors (RD-6, SEL-3). Called with the mutex held.
    pub fn wake_all(&self, state: &UnitState) {
        wakeup(self.channel());
        state.sel.wakeup();
    }

    /// The one blocking dequeue every reader uses. With the mutex held: take the head packet;
    /// else fail with `ENXIO` if the unit was closed or the driver is going away; else
    /// `EAGAIN` when non-blocking; else sleep interruptibly and look again (RD-4..RD-6).
    pub fn dequeue(
        &self,
        state: &mut KGuard<'_, UnitState>,
        nonblocking: bool,
    ) -> Result<QueuedPacket, Errno> {
        loop {
            if let Some(item) = state.queue.pop() {
                return Ok(item);
            }
            if !state.open || driver::is_dying() {
                return Err(Errno::ENXIO);
            }
            if nonblocking || state.nonblocking {
                return Err(Errno::EAGAIN);
            }
            state.sleep(self.channel(), Interruptible::Yes)?;
        }
    }

    /// Whether a read would not block: a packet is queued, or the unit is going away (SEL-1).
    pub fn readable(state: &UnitState) -> bool {
        !state.queue.is_empty() || !state.open || driver::is_dying()
    }
}
