//! Concurrency stress of tap units under schedule perturbation (issue 14; docs/tap-contract.md
//! TR-1, TW7, TW8, TO1..TO5, TS-1, TA-4, TK-1, TC-1..TC-5, TL-2, TL-3), with tun and tap units
//! open at once while unload is attempted. Every outcome is decided by counts and state, never
//! by a clock: waits are bounded only to turn a hang into a failure. Every frame is read at
//! most once and only if queued, the counters match what the threads saw, nothing leaks.
//!
//! The seed is printed at the start and on failure; replay with `XNUSIM_SEED=<seed>`. The long
//! mode (`TUNNEL_SOAK=1`) runs more rounds with a fresh seed.

mod common;

use common::*;
use driver_tests::tap::*;
use driver_tests::*;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use xnu_sim::abi::*;
use xnu_sim::syscalls::{self, O_RDWR};
use xnu_sim::{devices, link, netinspect, stack, Errno, Fd, KextError};

/// Bound for a thread to finish once released: a hang is a failure, it decides nothing else.
const BOUND: Duration = Duration::from_secs(20);

/// Waits until `ready()` (polled); [`BOUND`] only turns a hang into a failure.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + BOUND;
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "hang: {what}");
        std::thread::yield_now();
    }
}

/// A frame carrying `id`: 22 bytes, type 0x88b5 (local experimental).
fn tagged(dst: [u8; 6], id: u64) -> Vec<u8> {
    frame(dst, PEER_MAC, 0x88b5, &id.to_be_bytes())
}

/// The id of a frame built by [`tagged`].
fn id_of(f: &[u8]) -> u64 {
    assert_eq!(f.len(), 22, "TR-1: one whole frame per read");
    u64::from_be_bytes(f[14..22].try_into().unwrap())
}

#[derive(Default)]
struct Seen {
    /// Ids the driver's output queued (TO5).
    queued: HashSet<u64>,
    /// Output refused: TO1/TO2 (`EHOSTDOWN`) and TO4 (`ENOBUFS`).
    refused: u64,
    /// Ids read from the device.
    read: Vec<u64>,
    /// Writes that returned the full length (TW7 or TW8).
    written: HashSet<u64>,
}

/// TR-1, TS-1, TW7/TW8, TO1..TO5, TL-2: on four tap units at once a blocking reader, a select
/// reader and a writer each; two threads inject frames over all four; a thread flips flags,
/// MTU, link address and promiscuous mode; unload attempts run all along, refused because tap
/// and tun units are open; then close races with all of them. Finally an unload races with
/// opens, output and ioctls on both kinds until it succeeds cleanly.
#[test]
fn tap_traffic_ioctls_close_and_unload_race_without_loss_or_leak() {
    boot_perturbed(0x7a9_0001);
    load();
    let units = [0usize, 5, 10, 15];
    let rounds = scaled(6, 40);
    let per_injector = scaled(300, 2000) as u64;
    let mut refusals_total = 0u64;
    for round in 0..rounds {
        let tun = open_unit(round % 16);
        let fds: Vec<Fd> = units.iter().map(|&u| open_tap(u)).collect();
        let macs: Vec<[u8; 6]> = units.iter().map(|&u| mac_of(&tap_name(u))).collect();
        for &u in &units {
            stack::set_flags(&tap_name(u), IFF_UP, 0).unwrap();
        }
        let before: HashMap<usize, netinspect::IfStats> =
            units.iter().map(|&u| (u, if_stats(&tap_name(u)))).collect();
        let frames_before: Vec<usize> = units
            .iter()
            .map(|&u| netinspect::frames_in(&tap_name(u)).len())
            .collect();
        let seen: Arc<Vec<Mutex<Seen>>> =
            Arc::new(units.iter().map(|_| Mutex::new(Seen::default())).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for (k, &fd) in fds.iter().enumerate() {
            let s = seen.clone();
            workers.push(spawn(move || loop {
                let mut buf = [0u8; 2048];
                match syscalls::read(fd, &mut buf) {
                    Ok(n) => s[k].lock().unwrap().read.push(id_of(&buf[..n])),
                    Err(Errno::ENXIO) | Err(Errno::EBADF) => break,
                    Err(e) => panic!("blocking read: {e:?}"),
                }
            }));
            let s = seen.clone();
            workers.push(spawn(move || loop {
                match syscalls::select(&[fd], &[], None) {
                    Ok(_) => {}
                    Err(Errno::EBADF) => break,
                    Err(e) => panic!("select: {e:?}"),
                }
                let mut buf = [0u8; 2048];
                match syscalls::read(fd, &mut buf) {
                    Ok(n) => s[k].lock().unwrap().read.push(id_of(&buf[..n])),
                    // The blocking reader took the frame select saw: sleep again.
                    Err(Errno::ENXIO) | Err(Errno::EBADF) => break,
                    Err(e) => panic!("read after select: {e:?}"),
                }
            }));
            let (s, dst, unit) = (seen.clone(), macs[k], units[k] as u64);
            workers.push(spawn(move || {
                for seq in 0u64.. {
                    let id = (1 << 40) | (unit << 32) | seq;
                    let f = tagged(dst, id);
                    match syscalls::write(fd, &f) {
                        Ok(n) => {
                            assert_eq!(n, f.len(), "TW7/TW8: the whole length");
                            s[k].lock().unwrap().written.insert(id);
                        }
                        Err(Errno::EBADF) | Err(Errno::ENXIO) => break,
                        Err(e) => panic!("write: {e:?}"),
                    }
                    if seq % 16 == 0 {
                        std::thread::yield_now();
                    }
                }
            }));
        }
        let mut injectors = Vec::new();
        for t in 0..2u64 {
            let s = seen.clone();
            injectors.push(spawn(move || {
                for seq in 0..per_injector {
                    let k = (seq as usize + t as usize) % units.len();
                    let id = (2 << 40) | (t << 32) | ((round as u64) << 24) | seq;
                    let r = stack::output_raw(&tap_name(units[k]), &tagged(PEER_MAC, id));
                    let mut s = s[k].lock().unwrap();
                    match r {
                        Ok(()) => assert!(s.queued.insert(id)),
                        Err(Errno::ENOBUFS) | Err(Errno::EHOSTDOWN) => s.refused += 1,
                        Err(e) => panic!("output: {e:?}"),
                    }
                }
            }));
        }
        let stop_io = stop.clone();
        let ioctls = spawn(move || {
            let mut i = 0usize;
            while !stop_io.load(SeqCst) {
                let n = tap_name(units[i % units.len()]);
                let r = match i % 7 {
                    0 => stack::set_flags(&n, 0, IFF_UP),
                    1 => stack::set_flags(&n, IFF_UP, 0),
                    2 => stack::set_mtu(&n, 1280 + (i % 9000) as i32),
                    3 => match stack::set_mtu(&n, 65518) {
                        Err(Errno::EINVAL) => Ok(()),
                        r => panic!("SIOCSIFMTU 65518: {r:?}"),
                    },
                    4 => link::set_lladdr(&n, &[0x02, 0, 0, 0, (i >> 8) as u8, i as u8]),
                    5 => link::set_promiscuous(&n, true),
                    _ => link::set_promiscuous(&n, false),
                };
                assert_eq!(r, Ok(()), "interface ioctl {}", i % 7);
                i += 1;
                std::thread::yield_now();
            }
        });
        let stop_ul = stop.clone();
        let refusals = Arc::new(AtomicU64::new(0));
        let refusals_ul = refusals.clone();
        let unloader = spawn(move || {
            while !stop_ul.load(SeqCst) {
                assert_eq!(xnu_sim::kextunload(), Err(KextError::Busy), "TL-2");
                refusals_ul.fetch_add(1, SeqCst);
                std::thread::yield_now();
            }
        });
        for (i, t) in injectors.into_iter().enumerate() {
            join_within(t, BOUND, &format!("injector {i}"));
        }
        // Counted, not timed: at least one attempt was made while everything was open.
        wait_for("an unload attempt", || refusals.load(SeqCst) > 0);
        for &fd in &fds {
            syscalls::close(fd).unwrap();
        }
        stop.store(true, SeqCst);
        join_within(unloader, BOUND, "unload attempts");
        join_within(ioctls, BOUND, "interface ioctls");
        refusals_total += refusals.load(SeqCst);
        for (i, t) in workers.into_iter().enumerate() {
            join_within(t, BOUND, &format!("tap worker {i} after close"));
        }
        syscalls::close(tun).unwrap();
        for (k, &u) in units.iter().enumerate() {
            let name = tap_name(u);
            let s = seen[k].lock().unwrap();
            let (a, b) = (if_stats(&name), before[&u]);
            let mut once = HashSet::new();
            for id in &s.read {
                assert!(once.insert(*id), "{name}: {id:#x} read twice");
                assert!(
                    s.queued.contains(id),
                    "{name}: {id:#x} read but never queued"
                );
            }
            assert!(
                s.queued.len() - s.read.len() <= 128,
                "{name}: TC-1 purges one queue"
            );
            assert_eq!(
                a.opackets - b.opackets,
                s.queued.len() as u64,
                "{name}: TO5"
            );
            assert_eq!(a.oerrors - b.oerrors, s.refused, "{name}: TO1..TO4");
            let inputs = &netinspect::frames_in(&name)[frames_before[k]..];
            let mut once = HashSet::new();
            for f in inputs {
                let id = id_of(&f.bytes);
                assert!(once.insert(id), "{name}: {id:#x} input twice");
                assert!(s.written.contains(&id), "{name}: {id:#x} never written");
            }
            assert_eq!(a.ipackets - b.ipackets, inputs.len() as u64, "{name}: TW8");
            assert_eq!(
                (a.ipackets - b.ipackets) + (a.iqdrops - b.iqdrops),
                s.written.len() as u64,
                "{name}: each write input (TW8) or dropped while down (TW7)"
            );
            assert_eq!(a.ierrors, b.ierrors, "{name}: no write error");
            assert_eq!(
                a.ibytes - b.ibytes,
                22 * inputs.len() as u64,
                "TW8: whole frames"
            );
        }
        assert_eq!(
            xnu_sim::leaks().mbufs,
            0,
            "round {round}: mbufs after close"
        );
    }

    // An unload racing with opens, output and ioctls on both kinds: refused or clean (TL-3).
    let unloaded = Arc::new(AtomicBool::new(false));
    let mut racers = Vec::new();
    for t in 0..4usize {
        let done = unloaded.clone();
        racers.push(spawn(move || {
            let mut i = 0usize;
            while !done.load(SeqCst) {
                let u = [0, 5, 10, 15][(i + t) % 4];
                match t {
                    0 => match stack::output_raw(&tap_name(u), &tagged(PEER_MAC, i as u64)) {
                        Ok(()) | Err(Errno::EHOSTDOWN) | Err(Errno::ENXIO) => {}
                        r => panic!("tap output during unload: {r:?}"),
                    },
                    1 => match link::set_lladdr(&tap_name(u), &[0x02, 1, 2, 3, 4, u as u8]) {
                        Ok(()) | Err(Errno::ENXIO) => {}
                        r => panic!("SIOCSIFLLADDR during unload: {r:?}"),
                    },
                    2 => match syscalls::open(&tap_dev(u), O_RDWR) {
                        Ok(fd) => syscalls::close(fd).unwrap(),
                        Err(Errno::ENXIO) | Err(Errno::ENOENT) => {}
                        Err(e) => panic!("tap open during unload: {e:?}"),
                    },
                    _ => match syscalls::open(&dev(u), O_RDWR) {
                        Ok(fd) => syscalls::close(fd).unwrap(),
                        Err(Errno::ENXIO) | Err(Errno::ENOENT) => {}
                        Err(e) => panic!("tun open during unload: {e:?}"),
                    },
                }
                i += 1;
            }
        }));
    }
    let mut attempts = 0u64;
    loop {
        attempts += 1;
        match xnu_sim::kextunload() {
            Ok(()) => break,
            Err(KextError::Busy) => refusals_total += 1,
            Err(e) => panic!("unload: {e:?}"),
        }
        assert!(attempts < 1_000_000, "unload never succeeded");
        std::thread::yield_now();
    }
    unloaded.store(true, SeqCst);
    for (i, t) in racers.into_iter().enumerate() {
        join_within(t, BOUND, &format!("unload racer {i}"));
    }
    assert!(devices::node_names().is_empty(), "TL-3: no node");
    assert_no_leaks("after the racing unload");
    figure("stress_rounds", rounds);
    figure("unload_refusals", refusals_total);
}

/// TR-1 (RD-6), TC-5, TL-2: readers asleep on all sixteen tap and sixteen tun units; unload
/// attempts are refused and leave them asleep (a frame still reaches each tap reader); close
/// releases every one with `ENXIO`.
#[test]
fn close_releases_every_tap_and_tun_sleeper_and_refused_unloads_leave_them_asleep() {
    boot_perturbed(0x7a9_0002);
    load();
    let taps: Vec<Fd> = (0..16).map(open_tap).collect();
    let tuns: Vec<Fd> = (0..16).map(open_unit).collect();
    for n in 0..16 {
        stack::set_flags(&tap_name(n), IFF_UP, 0).unwrap();
    }
    let readers: Vec<_> = taps
        .iter()
        .chain(&tuns)
        .map(|&fd| {
            spawn(move || {
                let mut got = Vec::new();
                loop {
                    let mut buf = [0u8; 2048];
                    match syscalls::read(fd, &mut buf) {
                        Ok(n) => got.push(buf[..n].to_vec()),
                        Err(e) => return (got, e),
                    }
                }
            })
        })
        .collect();
    wait_for_sleepers(32);
    for _ in 0..scaled(5, 50) {
        assert_eq!(xnu_sim::kextunload(), Err(KextError::Busy), "TL-2");
    }
    for n in 0..16 {
        stack::output_raw(&tap_name(n), &tagged(PEER_MAC, n as u64)).unwrap();
    }
    for fd in taps.into_iter().chain(tuns) {
        syscalls::close(fd).unwrap();
    }
    for (k, r) in readers.into_iter().enumerate() {
        let (got, e) = join_within(r, BOUND, &format!("reader {k}"));
        assert_eq!(e, Errno::ENXIO, "reader {k}: TC-5 wakes it");
        if k < 16 {
            assert!(
                got.len() <= 1 && got.iter().all(|f| id_of(f) == k as u64),
                "{got:?}"
            );
        } else {
            assert!(got.is_empty());
        }
    }
    unload_clean();
}

/// TA-4, TK-1, TC-5 re-entrancy under concurrency: one thread changes tap3's MAC over and over
/// (each change announces its IPv4 address through the driver's output, synchronously), a
/// bridge reads its media inside every link event, while other threads open and close the
/// unit and write to it. Nothing deadlocks or panics, every outcome is a documented one.
#[test]
fn lladdr_changes_and_link_events_race_with_open_close_and_writes() {
    boot_perturbed(0x7a9_0003);
    load();
    let fd = open_tap(3);
    stack::add_address("tap3", AF_INET, &TAP_IP).unwrap();
    syscalls::close(fd).unwrap();
    link::bridge_add_member("tap3").unwrap();
    let cycles = scaled(300, 5000);
    let changer = spawn(move || {
        for i in 0..cycles {
            let mac = [0x02, 0x33, 0, 0, (i >> 8) as u8, i as u8];
            assert_eq!(link::set_lladdr("tap3", &mac), Ok(()), "TA-4 at any time");
        }
    });
    let opener = spawn(move || {
        let mut opened = 0u64;
        for i in 0..cycles {
            match syscalls::open("/dev/tap3", O_RDWR) {
                Ok(fd) => {
                    opened += 1;
                    if i % 2 == 0 {
                        stack::add_address("tap3", AF_INET, &TAP_IP).unwrap();
                    }
                    let f = tagged(BROADCAST, i as u64);
                    assert_eq!(syscalls::write(fd, &f), Ok(f.len()));
                    syscalls::close(fd).unwrap();
                }
                Err(e) => panic!("open: {e:?}"),
            }
        }
        opened
    });
    let opened = join_within(opener, BOUND, "open/close/write");
    join_within(changer, BOUND, "SIOCSIFLLADDR");
    assert_eq!(opened, cycles as u64);
    let codes = netinspect::events("tap3");
    let on = codes
        .iter()
        .filter(|e| e.event_code == KEV_DL_LINK_ON)
        .count();
    let off = codes
        .iter()
        .filter(|e| e.event_code == KEV_DL_LINK_OFF)
        .count();
    assert_eq!(
        (on, off),
        (cycles + 1, cycles + 1),
        "TK-1: one per open and close"
    );
    assert_eq!(
        netinspect::bridge_media_active("tap3"),
        Some(false),
        "closed last"
    );
    unload_clean();
}

/// TL-2: unload attempts refused because a tun unit is open never make a concurrent tap open,
/// write, read, ioctl or close fail (one gate for both kinds: a caller arriving while an
/// attempt looks waits for its answer).
#[test]
fn refused_unload_attempts_never_fail_concurrent_tap_calls() {
    boot_perturbed(0x7a9_0004);
    load();
    let anchor = open_unit(0);
    let stop = Arc::new(AtomicBool::new(false));
    let stop_ul = stop.clone();
    let unloader = spawn(move || {
        let mut attempts = 0u64;
        while !stop_ul.load(SeqCst) {
            assert_eq!(xnu_sim::kextunload(), Err(KextError::Busy), "TL-2");
            attempts += 1;
        }
        attempts
    });
    for i in 0..scaled(1000, 20000) {
        let fd = syscalls::open("/dev/tap1", O_RDWR)
            .unwrap_or_else(|e| panic!("iteration {i}: open: {e:?}"));
        syscalls::ioctl_int(fd, tunnel::ioctl::FIONBIO, 1)
            .unwrap_or_else(|e| panic!("iteration {i}: FIONBIO: {e:?}"));
        let f = tagged(BROADCAST, i as u64);
        assert_eq!(syscalls::write(fd, &f), Ok(f.len()), "iteration {i}: TW7");
        assert_eq!(
            syscalls::read(fd, &mut [0u8; 64]),
            Err(Errno::EAGAIN),
            "iteration {i}"
        );
        assert_eq!(mac_register(fd)[5], 1, "iteration {i}: SIOCGIFADDR");
        syscalls::close(fd).unwrap_or_else(|e| panic!("iteration {i}: close: {e:?}"));
    }
    stop.store(true, SeqCst);
    let attempts = join_within(unloader, BOUND, "unload attempts");
    assert!(attempts > 0);
    syscalls::close(anchor).unwrap();
    figure("unload_refusals", attempts);
    unload_clean();
}
