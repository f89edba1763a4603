//! The protocol KPI (xnu bsd/net/kpi_protocol.h, bsd/net/kpi_protocol.c): `proto_input`, where
//! the fake stack takes the packets a protocol receives, and the protocol plumbers: which module
//! attaches a protocol family to interfaces of one interface family, and
//! `proto_plumb`/`proto_unplumb`, through which the fake stack's address paths attach protocols
//! (bsd/netinet/in.c, bsd/netinet6/in6.c).

use crate::abi::*;
use crate::config::{self, Fault};
use crate::errno::Errno;
use crate::mbuf;
use crate::net::kpi_interface::with_if;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// `proto_input` (bsd/net/kpi_protocol.c): the protocol layer takes the packet; the fake stack
/// records (family, bytes) or hands them to an input hook.
#[no_mangle]
extern "C" fn proto_input(pf: u32, m: mbuf_t) -> errno_t {
    let ifp = mbuf::rcvif(m) as ifnet_t;
    let name = with_if(ifp, |i| i.name.clone());
    let hook = INPUT_HOOKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|h| h.get(&name).cloned());
    match hook {
        // Called without any simulator lock held.
        Some(hook) => hook(pf, &mbuf::packet_bytes(m)),
        None if config::config().capture => {
            let bytes = mbuf::packet_bytes(m);
            with_if(ifp, |i| i.received.push((pf, bytes)));
        }
        None => with_if(ifp, |i| i.delivered += 1),
    }
    mbuf::free_chain(m);
    0
}

/// A push-style consumer of what the stack receives on one interface: `(family, packet)`.
pub type InputHook = Arc<dyn Fn(u32, &[u8]) + Send + Sync>;

static INPUT_HOOKS: Mutex<Option<HashMap<String, InputHook>>> = Mutex::new(None);

/// Hands every packet the stack receives on interface `name` to `hook` (called from
/// `proto_input`, on the driver's thread, with no simulator lock held) instead of recording
/// it for [`received`](crate::netinspect::received)/[`take_received`](crate::netinspect::take_received);
/// `None` removes the hook. For hosts that bridge the simulated stack to a real one
/// (tests/tunnel-sim) and must not poll.
pub fn set_input_hook(name: &str, hook: Option<InputHook>) {
    let mut hooks = INPUT_HOOKS.lock().unwrap_or_else(|e| e.into_inner());
    let hooks = hooks.get_or_insert_with(HashMap::new);
    match hook {
        Some(h) => hooks.insert(name.to_string(), h),
        None => hooks.remove(name),
    };
}

/// One registration: the kext's callbacks, or another driver's (a test stand-in, with none).
#[derive(Clone, Copy)]
struct Plumber {
    attach: proto_plumb_handler,
    detach: proto_unplumb_handler,
    /// Registered through the KPI by the loaded kext (counted by the leak check).
    by_kext: bool,
}

/// (protocol family, interface family) → plumber. XNU keeps the interface family's low 16
/// bits (`proto_register_plumber`); so does the simulator.
static PLUMBERS: Mutex<Option<HashMap<(u32, u32), Plumber>>> = Mutex::new(None);

fn plumbers<R>(f: impl FnOnce(&mut HashMap<(u32, u32), Plumber>) -> R) -> R {
    f(PLUMBERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new))
}

/// `proto_register_plumber` (bsd/net/kpi_protocol.c): `EEXIST` when the (protocol, interface
/// family) pair is taken, as when two tun drivers are loaded; `ENOMEM` when its allocation
/// fails (fault injection: [`Fault::ProtoRegisterPlumber`]).
#[no_mangle]
extern "C" fn proto_register_plumber(
    pf: u32,
    family: u32,
    attach: proto_plumb_handler,
    detach: proto_unplumb_handler,
) -> errno_t {
    plumbers(|p| {
        CALLS.fetch_add(1, Relaxed);
        let key = (pf, family & 0xffff);
        if p.contains_key(&key) {
            return Errno::EEXIST.0;
        }
        if config::should_fail(Fault::ProtoRegisterPlumber) {
            return Errno::ENOMEM.0;
        }
        p.insert(
            key,
            Plumber {
                attach,
                detach,
                by_kext: true,
            },
        );
        0
    })
}

/// `proto_unregister_plumber` (bsd/net/kpi_protocol.c): removes the pair's plumber if there is
/// one. It returns nothing and cannot fail.
#[no_mangle]
extern "C" fn proto_unregister_plumber(pf: u32, family: u32) {
    plumbers(|p| p.remove(&(pf, family & 0xffff)));
}

/// `proto_register_plumber` calls so far.
static CALLS: AtomicU64 = AtomicU64::new(0);

/// How many times `proto_register_plumber` was called.
pub fn plumber_calls() -> u64 {
    CALLS.load(Relaxed)
}

/// Registers another driver's plumber for (protocol, interface family), as tuntaposx or
/// Tunnelblick's tun does at load. It attaches nothing: `proto_plumb` through it answers
/// `EOPNOTSUPP`.
pub fn register_foreign_plumber(protocol: u32, family: u32) {
    plumbers(|p| {
        p.insert(
            (protocol, family & 0xffff),
            Plumber {
                attach: None,
                detach: None,
                by_kext: false,
            },
        )
    });
}

/// Registers one of the kernel's own plumbers (bsd/net/ether_if_module.c
/// `ether_family_init` at boot), as `proto_register_plumber` would, without counting a KPI call.
pub(crate) fn register_system_plumber(
    protocol: u32,
    family: u32,
    attach: proto_plumb_handler,
    detach: proto_unplumb_handler,
) {
    plumbers(|p| {
        p.insert(
            (protocol, family & 0xffff),
            Plumber {
                attach,
                detach,
                by_kext: false,
            },
        )
    });
}

/// Whether a plumber is registered for (protocol, interface family).
pub(crate) fn is_registered(protocol: u32, family: u32) -> bool {
    plumbers(|p| p.contains_key(&(protocol, family & 0xffff)))
}

/// Plumbers the kext registered and has not unregistered (leak accounting).
pub(crate) fn live_kext_plumbers() -> usize {
    plumbers(|p| p.values().filter(|x| x.by_kext).count())
}

/// `proto_plumb` (bsd/net/kpi_protocol.c): calls the attach function of the plumber for
/// (`pf`, the interface's family); `ENXIO` when there is none. No simulator lock is held
/// during the call.
pub(crate) fn proto_plumb(pf: u32, ifp: ifnet_t) -> Result<(), Errno> {
    let family = with_if(ifp, |i| i.family);
    let plumber = plumbers(|p| p.get(&(pf, family & 0xffff)).copied()).ok_or(Errno::ENXIO)?;
    let attach = plumber.attach.ok_or(Errno::EOPNOTSUPP)?;
    let call = || {
        // SAFETY: a registered plumber (the kext's, or the kernel's own), called with a live
        // ifnet.
        unsafe { attach(ifp, pf) }
    };
    let rc = if plumber.by_kext {
        crate::kext::in_kext(call)
    } else {
        call()
    };
    crate::errno::check(rc)
}

/// `proto_unplumb` (bsd/net/kpi_protocol.c): calls the detach function of the plumber for
/// (`pf`, the interface's family), if there is one (`SIOCPROTODETACH` reaches it).
pub(crate) fn proto_unplumb(pf: u32, ifp: ifnet_t) {
    let family = with_if(ifp, |i| i.family);
    let plumber = plumbers(|p| p.get(&(pf, family & 0xffff)).copied());
    if let Some(Plumber {
        detach: Some(detach),
        by_kext,
        ..
    }) = plumber
    {
        let call = || {
            // SAFETY: as in `proto_plumb`.
            unsafe { detach(ifp, pf) }
        };
        if by_kext {
            crate::kext::in_kext(call);
        } else {
            call();
        }
    }
}
