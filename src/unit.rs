//! Per-unit state: one device node (`/dev/tunN`) and its interface (`tunN`), of one kind
//! ([`crate::link`]).
//!
//! Lock coverage: every field of [`UnitState`] (modes, owner, queue, selinfo) is guarded by
//! the unit's kernel mutex ([`Unit::state`]). The counters ([`Unit::counters`]) are atomics,
//! outside the mutex: counting never takes it, so a write or a read holds the mutex once. Readers sleep on that mutex (msleep
//! interlock) with the unit's address as the channel, so the emptiness check and the sleep
//! are atomic with respect to enqueue (RD-5).
//! Lock order: the driver's global mutex before a unit mutex; never the reverse. No unit mutex
//! is held across a call that can re-enter the driver (`ifnet_input`, `ifnet_attach`,
//! protocol attach, `ifnet_detach`, and `sock_ioctl` removing an address of the unit's own
//! interface at close and unload). The driver-wide debug level is an atomic in
//! [`crate::debug`], outside any unit.

use crate::counters::{Count, CounterCells, UnitCounters};
use crate::framing::Framing;
use crate::gate;
use crate::kpi::errno::Errno;
use crate::kpi::ifnet::{Ifnet, AF_INET, AF_INET6};
use crate::kpi::lock::{wakeup, Channel, Interruptible, KGuard, KMutex};
use crate::kpi::select::SelInfo;
use crate::limits::{ETHER_ADDR_LEN, TAP_UNITS, TUN_UNITS};
use crate::link::{LinkId, LinkKind};
use crate::owner::Owner;
use crate::queue::{PacketQueue, QueuedPacket};

/// How far the unit's interface has been built by opens (contract U-4, U-5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Setup {
    /// `ifnet_attach` succeeded (a detached ifnet can never be attached again).
    pub attached: bool,
    /// BPF attached with `DLT_NULL`.
    pub bpf: bool,
}

impl Setup {
    /// Every step done.
    pub fn is_complete(&self) -> bool {
        self.attached && self.bpf
    }
}

/// The protocols the stack has attached to the unit's interface through the driver's
/// plumbers (U-8); unload detaches them (ST-3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Protocols {
    /// `PF_INET` is attached.
    pub inet: bool,
    /// `PF_INET6` is attached.
    pub inet6: bool,
}

impl Protocols {
    /// Records that `family` (`AF_INET` or `AF_INET6`) is attached or not.
    pub fn set(&mut self, family: u32, attached: bool) {
        match family {
            AF_INET => self.inet = attached,
            AF_INET6 => self.inet6 = attached,
            _ => {}
        }
    }

    /// The attached families.
    pub fn families(&self) -> impl Iterator<Item = u32> {
        [(self.inet, AF_INET), (self.inet6, AF_INET6)]
            .into_iter()
            .filter_map(|(on, family)| on.then_some(family))
    }
}

/// The state of one unit. Guarded by the unit mutex (see the module doc).
pub struct UnitState {
    /// An open is building the interface; the unit is claimed (a second open → `EBUSY`).
    pub opening: bool,
    /// `d_open` succeeded and `d_close` has not run.
    pub open: bool,
    /// `d_close` is removing addresses without the mutex; the unit is still claimed (a new
    /// open → `EBUSY`) until it has restored the creation defaults.
    pub closing: bool,
    /// The opener's pid (or the `TUNSIFPID` caller's); 0 when closed.
    pub pid: i32,
    /// `FIONBIO`: reads never sleep.
    pub nonblocking: bool,
    /// `FIOASYNC`: `SIGIO` on enqueue.
    pub async_io: bool,
    /// Who gets `SIGIO` (`TIOCSPGRP`, IO-1..IO-5).
    pub owner: Owner,
    /// The framing mode.
    pub framing: Framing,
    /// Packets waiting for a reader.
    pub queue: PacketQueue,
    /// The interface, from the first open until unload.
    pub ifnet: Option<Ifnet>,
    /// How far the interface is built.
    pub setup: Setup,
    /// The protocols plumbed onto the interface.
    pub protocols: Protocols,
    /// The interface's `detached` callback has run (unload waits for it).
    pub detached: bool,
    /// Ethernet units: the interface's link address, made when the interface is (TA-1) and
    /// changed only by `SIOCSIFLLADDR` (TA-4).
    pub mac: [u8; ETHER_ADDR_LEN],
    /// Ethernet units: the MAC register of device `SIOCGIFADDR`/`SIOCSIFADDR`, set to the
    /// interface's address at open and cleared at close (TI-1).
    pub mac_register: [u8; ETHER_ADDR_LEN],
    /// `select(2)` records.
    pub sel: SelInfo,
}

impl UnitState {
    /// A unit that was never opened.
    pub const fn new() -> UnitState {
        UnitState {
            opening: false,
            open: false,
            closing: false,
            pid: 0,
            nonblocking: false,
            async_io: false,
            owner: Owner::None,
            framing: Framing::Raw,
            queue: PacketQueue::new(),
            ifnet: None,
            setup: Setup {
                attached: false,
                bpf: false,
            },
            protocols: Protocols {
                inet: false,
                inet6: false,
            },
            detached: false,
            mac: [0; ETHER_ADDR_LEN],
            mac_register: [0; ETHER_ADDR_LEN],
            sel: SelInfo::new(),
        }
    }

    /// Restores what a new opener must see (close, docs/tun-contract.md section 10 step 5): raw
    /// framing, blocking, async off, no owner, no pid. The interface side is reset by close.
    pub fn reset_modes(&mut self) {
        self.mac_register = [0; ETHER_ADDR_LEN];
        self.pid = 0;
        self.nonblocking = false;
        self.async_io = false;
        self.owner = Owner::None;
        self.framing = Framing::Raw;
    }

    /// Whether the unit is claimed by an open, an opener or a close in progress.
    pub fn is_claimed(&self) -> bool {
        self.open || self.opening || self.closing
    }
}

impl Default for UnitState {
    fn default() -> Self {
        UnitState::new()
    }
}

/// One unit: its kind, its state behind its kernel mutex, and its counters.
pub struct Unit {
    /// Which kind of unit it is.
    pub link: LinkId,
    /// The unit's state; see the module doc for lock coverage.
    pub state: KMutex<UnitState>,
    /// Section 12 counters: atomics, taken without the mutex.
    pub counters: CounterCells,
}

impl Unit {
    const fn new(link: LinkId) -> Unit {
        Unit {
            link,
            state: KMutex::new(UnitState::new()),
            counters: CounterCells::new(),
        }
    }
}

/// The tun units, in static storage: `tunN` is `TUN[N]`.
static TUN: [Unit; TUN_UNITS] = [const { Unit::new(LinkId::Tun) }; TUN_UNITS];
/// The tap units: `tapN` is `TAP[N]`.
static TAP: [Unit; TAP_UNITS] = [const { Unit::new(LinkId::Tap) }; TAP_UNITS];

/// The units of kind `link`, by number.
#[inline]
pub fn units_of(link: LinkId) -> &'static [Unit] {
    match link {
        LinkId::Tun => &TUN,
        LinkId::Tap => &TAP,
    }
}

/// Every unit of every kind.
pub fn all() -> impl Iterator<Item = &'static Unit> {
    LinkId::ALL.into_iter().flat_map(units_of)
}

/// Units per kind in a softc: `softc - 1 = kind index * SOFTC_STRIDE + number`.
const SOFTC_STRIDE: usize = 256;

impl Unit {
    /// Records `count` in the unit counters and, where it shows there, in the interface
    /// statistics. Takes no lock.
    pub fn count(&self, ifnet: &Ifnet, count: Count) {
        self.counters.add(count);
        count.to_ifnet(ifnet);
    }

    /// The unit of kind `link` for a device minor number.
    #[inline]
    pub fn get(link: LinkId, minor: u32) -> Result<&'static Unit, Errno> {
        units_of(link).get(minor as usize).ok_or(Errno::ENXIO)
    }

    /// The unit an interface was allocated for, from its softc ([`Unit::softc`]). Says
    /// nothing about whether the interface is still the unit's (see `iface`).
    pub fn of_interface(ifnet: &Ifnet) -> Option<&'static Unit> {
        let code = ifnet.softc().checked_sub(1)?;
        let link = LinkId::from_index(code / SOFTC_STRIDE)?;
        units_of(link).get(code % SOFTC_STRIDE)
    }

    /// The softc an interface of this unit is allocated with: its kind and number, plus one
    /// (never 0).
    pub fn softc(&'static self) -> usize {
        self.link as usize * SOFTC_STRIDE + self.number() + 1
    }

    /// The unit's kind.
    #[inline]
    pub fn kind(&self) -> &'static LinkKind {
        self.link.kind()
    }

    /// The unit's number within its kind.
    pub fn number(&'static self) -> usize {
        units_of(self.link)
            .iter()
            .position(|u| core::ptr::eq(u, self))
            .expect("unit in its kind's array")
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
            if !state.open || gate::is_dying() {
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
        !state.queue.is_empty() || !state.open || gate::is_dying()
    }
}

/// The counters of unit `number` of kind `link` (section 12) for the host tests and the debug
/// dump; `None` when the unit does not exist or the driver is not loaded.
pub fn counters_of(link: LinkId, number: usize) -> Option<UnitCounters> {
    let unit = units_of(link).get(number)?;
    unit.state.is_installed().then(|| unit.counters.snapshot())
}

/// The counters of `tun<number>` (see [`counters_of`]).
pub fn counters(number: usize) -> Option<UnitCounters> {
    counters_of(LinkId::Tun, number)
}

/// The counters of `tap<number>` (see [`counters_of`]).
pub fn tap_counters(number: usize) -> Option<UnitCounters> {
    counters_of(LinkId::Tap, number)
}
