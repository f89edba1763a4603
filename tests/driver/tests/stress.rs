//! Concurrency stress under schedule perturbation (issue 5; docs/tun-contract.md RD-5, RD-6, SEL-1,
//! SEL-3, SEL-4, O1..O5, OUT-5, W8, W9, ST-1, ST-5): blocking and select readers, writers,
//! output injection from several threads, interface ioctls, close and unload attempts, all at
//! once. Every wait is bounded (a hang is a failure), every packet is delivered exactly once or
//! accounted for, the interface counters match what the threads saw, and nothing leaks.
//!
//! The seed is printed at the start and on failure; replay with `XNUSIM_SEED=<seed>`. The long
//! mode (`TUNNEL_SOAK=1`, `scripts/soak.sh`) runs more rounds and packets with a fresh seed.

mod common;

use common::*;
use driver_tests::*;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use xnu_sim::abi::AF_INET;
use xnu_sim::syscalls::{self, O_RDWR};
use xnu_sim::{devices, netinspect, stack, Errno, Fd, KextError};

/// Generous bound for any thread to finish once released: far above the perturbation delays.
const BOUND: Duration = Duration::from_secs(8);

/// Waits until `ready()` says an event has happened (polled); [`BOUND`] only turns a hang
/// into a failure, it never decides an outcome.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + BOUND;
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "hang: {what}");
        std::thread::yield_now();
    }
}

/// A packet carrying `id` in its UDP payload, so each one can be told apart.
fn tagged(id: u64) -> Vec<u8> {
    ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], &id.to_be_bytes())
}

/// The id carried by a packet built by [`tagged`].
fn id_of(packet: &[u8]) -> u64 {
    assert_eq!(packet.len(), 36, "RD-1: exactly one whole packet per read");
    u64::from_be_bytes(packet[28..36].try_into().unwrap())
}

fn name(unit: usize) -> String {
    format!("tun{unit}")
}

/// What the threads of one round saw, per unit.
#[derive(Default)]
struct Seen {
    /// Ids the stack handed to the driver and the driver queued (output returned 0).
    queued: HashSet<u64>,
    /// Output refused: queue full (O4).
    out_nobufs: u64,
    /// Output refused: unit closed or interface down (O1, O2).
    out_hostdown: u64,
    /// Ids read from the device.
    read: Vec<u64>,
    /// Writes that returned the full length (W8 or W9).
    written: HashSet<u64>,
}

/// RD-5, RD-6, SEL-1, SEL-3, O1..O5, OUT-5, W8/W9, ST-1, ST-5: every kind of caller at once on
/// four units, then close (racing with all of them) and unload attempts (refused while a unit
/// is open); finally an unload racing with output injection, interface ioctls and opens.
#[test]
fn readers_writers_injectors_ioctls_close_and_unload_race_without_loss_hang_or_leak() {
    boot_perturbed(0x5eed_0001);
    load();
    let units: Vec<usize> = vec![0, 5, 10, 15];
    let rounds = scaled(8, 40);
    let per_injector = scaled(300, 2000);
    let ops = Arc::new(AtomicU64::new(0));
    let mut unload_refusals = 0u64;

    for round in 0..rounds {
        let fds: Vec<Fd> = units.iter().map(|&u| open_unit(u)).collect();
        for &u in &units {
            configure(&name(u));
        }
        let before: HashMap<usize, netinspect::IfStats> = units
            .iter()
            .map(|&u| (u, netinspect::interface(&name(u)).unwrap().stats))
            .collect();
        let seen: Arc<Vec<Mutex<Seen>>> =
            Arc::new(units.iter().map(|_| Mutex::new(Seen::default())).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();

        for (k, &fd) in fds.iter().enumerate() {
            // A blocking reader: one packet per read until the unit is closed (RD-6: ENXIO) or
            // the descriptor is gone (EBADF).
            let (seen_r, ops_r) = (seen.clone(), ops.clone());
            workers.push(spawn(move || loop {
                let mut buf = [0u8; 2048];
                ops_r.fetch_add(1, SeqCst);
                match syscalls::read(fd, &mut buf) {
                    Ok(n) => seen_r[k].lock().unwrap().read.push(id_of(&buf[..n])),
                    Err(Errno::ENXIO) | Err(Errno::EBADF) => break,
                    Err(e) => panic!("blocking read: {e:?}"),
                }
            }));
            // A select reader: select, then read what it promised (SEL-1, SEL-4).
            let (seen_s, ops_s) = (seen.clone(), ops.clone());
            workers.push(spawn(move || loop {
                ops_s.fetch_add(1, SeqCst);
                match syscalls::select(&[fd], &[], Some(Duration::from_millis(20))) {
                    Ok((r, _)) if r.is_empty() => continue,
                    Ok(_) => {}
                    Err(Errno::EBADF) => break,
                    Err(e) => panic!("select: {e:?}"),
                }
                let mut buf = [0u8; 2048];
                match syscalls::read(fd, &mut buf) {
                    Ok(n) => seen_s[k].lock().unwrap().read.push(id_of(&buf[..n])),
                    Err(Errno::ENXIO) | Err(Errno::EBADF) => break,
                    Err(e) => panic!("read after select: {e:?}"),
                }
            }));
            // A writer (W8: dropped while down, W9: to the stack), until the descriptor goes.
            let (seen_w, ops_w) = (seen.clone(), ops.clone());
            let unit = units[k];
            workers.push(spawn(move || {
                for seq in 0u64.. {
                    let id = (1 << 40) | ((unit as u64) << 32) | seq;
                    let packet = tagged(id);
                    ops_w.fetch_add(1, SeqCst);
                    match syscalls::write(fd, &packet) {
                        Ok(n) => {
                            assert_eq!(n, packet.len(), "W8/W9: whole length");
                            seen_w[k].lock().unwrap().written.insert(id);
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
        // Output injection from two threads over every unit (O1..O5).
        let injected = Arc::new(AtomicU64::new(0));
        let mut injectors = Vec::new();
        for t in 0..2u64 {
            let (seen_i, ops_i, units_i, injected_i) =
                (seen.clone(), ops.clone(), units.clone(), injected.clone());
            injectors.push(spawn(move || {
                for seq in 0..per_injector as u64 {
                    let k = (seq as usize + t as usize) % units_i.len();
                    let id = (2 << 40) | (t << 32) | ((round as u64) << 24) | seq;
                    ops_i.fetch_add(1, SeqCst);
                    let result = stack::output(
                        &name(units_i[k]),
                        AF_INET,
                        &sockaddr_in([10, 0, 0, 2]),
                        &tagged(id),
                    );
                    injected_i.fetch_add(1, SeqCst);
                    let mut s = seen_i[k].lock().unwrap();
                    match result {
                        Ok(()) => assert!(s.queued.insert(id)),
                        Err(Errno::ENOBUFS) => s.out_nobufs += 1,
                        Err(Errno::EHOSTDOWN) => s.out_hostdown += 1,
                        Err(e) => panic!("output: {e:?}"),
                    }
                }
            }));
        }
        // Interface ioctls: down/up, MTU, addresses, racing with everything (section 8).
        let (stop_io, ops_io, units_io) = (stop.clone(), ops.clone(), units.clone());
        let ioctls = spawn(move || {
            let mut i = 0usize;
            while !stop_io.load(SeqCst) {
                let n = name(units_io[i % units_io.len()]);
                ops_io.fetch_add(1, SeqCst);
                let r = match i % 5 {
                    0 => stack::set_flags(&n, 0, xnu_sim::abi::IFF_UP),
                    1 => stack::set_flags(&n, xnu_sim::abi::IFF_UP, 0),
                    2 => stack::set_mtu(&n, 1280 + (i % 200) as i32),
                    3 => stack::set_mtu(&n, 10).map_or_else(
                        |e| {
                            assert_eq!(e, Errno::EINVAL, "errno #32");
                            Ok(())
                        },
                        |()| panic!("SIOCSIFMTU 10 accepted"),
                    ),
                    _ => stack::add_address(&n, AF_INET, &[10, 0, 0, 1]),
                };
                assert_eq!(r, Ok(()), "interface ioctl {}", i % 5);
                i += 1;
                std::thread::yield_now();
            }
        });
        // Unload attempts: refused while any unit is open (ST-1, errno #34).
        let (stop_ul, ops_ul) = (stop.clone(), ops.clone());
        let refusals = Arc::new(AtomicU64::new(0));
        let refusals_ul = refusals.clone();
        let unloader = spawn(move || {
            while !stop_ul.load(SeqCst) {
                ops_ul.fetch_add(1, SeqCst);
                assert_eq!(
                    xnu_sim::kextunload(),
                    Err(KextError::Busy),
                    "ST-1: refused while open"
                );
                refusals_ul.fetch_add(1, SeqCst);
                std::thread::sleep(Duration::from_micros(200));
            }
        });

        // Let traffic run, then close the units while every thread is still busy. At least
        // one unload attempt has been refused by then (counted, not timed: the ST-1 check at
        // the end does not depend on how fast the unloader thread got going).
        while injected.load(SeqCst) < per_injector as u64 {
            std::thread::sleep(Duration::from_millis(1));
        }
        wait_until(
            "no unload attempt was made while the units were open",
            || refusals.load(SeqCst) > 0,
        );
        for &fd in &fds[1..] {
            syscalls::close(fd).unwrap();
        }
        for (i, t) in injectors.into_iter().enumerate() {
            join_within(t, BOUND, &format!("injector {i}"));
        }
        // The unload attempts end while the anchor unit is still open: an unload that
        // succeeded would tear the cdevsw out from under descriptors other threads still use.
        stop.store(true, SeqCst);
        join_within(unloader, BOUND, "unload attempts");
        unload_refusals += refusals.load(SeqCst);
        join_within(ioctls, BOUND, "interface ioctls");
        syscalls::close(fds[0]).unwrap();
        for (i, t) in workers.into_iter().enumerate() {
            join_within(t, BOUND, &format!("reader/writer {i} after close"));
        }

        // Invariants, per unit.
        for (k, &u) in units.iter().enumerate() {
            let s = seen[k].lock().unwrap();
            let after = netinspect::interface(&name(u)).unwrap().stats;
            let b = before[&u];
            let mut once = HashSet::new();
            for id in &s.read {
                assert!(once.insert(*id), "tun{u}: packet {id:#x} read twice");
                assert!(s.queued.contains(id), "tun{u}: read {id:#x} never queued");
            }
            // Packets queued but not read were purged by close (section 10 step 2): at most
            // a full queue, since close purges and output is refused from then on (O1).
            let purged = s.queued.len() - s.read.len();
            assert!(purged <= 128, "tun{u}: {purged} packets vanished");
            assert_eq!(
                after.opackets - b.opackets,
                s.queued.len() as u64,
                "tun{u}: O5 opackets = packets queued"
            );
            assert_eq!(
                after.oerrors - b.oerrors,
                s.out_nobufs + s.out_hostdown,
                "tun{u}: O1..O4 oerrors = outputs refused"
            );
            let received: Vec<u64> = netinspect::take_received(&name(u))
                .into_iter()
                .map(|(family, bytes)| {
                    assert_eq!(family, AF_INET);
                    id_of(&bytes)
                })
                .collect();
            let mut once = HashSet::new();
            for id in &received {
                assert!(once.insert(*id), "tun{u}: {id:#x} reached the stack twice");
                assert!(s.written.contains(id), "tun{u}: {id:#x} never written");
            }
            assert_eq!(
                after.ipackets - b.ipackets,
                received.len() as u64,
                "tun{u}: W9 ipackets"
            );
            assert_eq!(
                (after.ipackets - b.ipackets) + (after.iqdrops - b.iqdrops),
                s.written.len() as u64,
                "tun{u}: every full-length write passed to the stack (W9) or counted dropped (W8)"
            );
            assert_eq!(after.ierrors, b.ierrors, "tun{u}: no write error");
        }
        assert_eq!(
            xnu_sim::leaks().mbufs,
            0,
            "round {round}: mbufs after close"
        );
    }

    // Finally an unload that races with output, interface ioctls and opens: each attempt is
    // refused or succeeds cleanly (ST-5), and after it nothing reaches the driver.
    let unloaded = Arc::new(AtomicBool::new(false));
    let mut racers = Vec::new();
    for t in 0..3usize {
        let (unloaded_r, ops_r) = (unloaded.clone(), ops.clone());
        racers.push(spawn(move || {
            let mut i = 0usize;
            while !unloaded_r.load(SeqCst) {
                let u = [0, 5, 10, 15][(i + t) % 4];
                ops_r.fetch_add(1, SeqCst);
                match t {
                    0 => match stack::output(
                        &name(u),
                        AF_INET,
                        &sockaddr_in([10, 0, 0, 2]),
                        &tagged(i as u64),
                    ) {
                        // Queued only while a racing open holds the unit (its close
                        // purges it); else O1/O2; EAFNOSUPPORT from the stack once ST-3
                        // detached the protocols; ENXIO once the interface is detached.
                        Ok(())
                        | Err(Errno::EHOSTDOWN)
                        | Err(Errno::EAFNOSUPPORT)
                        | Err(Errno::ENXIO) => {}
                        r => panic!("output during unload: {r:?}"),
                    },
                    1 => match stack::set_mtu(&name(u), 1400) {
                        Ok(()) | Err(Errno::ENXIO) => {}
                        r => panic!("SIOCSIFMTU during unload: {r:?}"),
                    },
                    _ => match syscalls::open(&dev(u), O_RDWR) {
                        Ok(fd) => syscalls::close(fd).unwrap(),
                        // U-7 / errno #4 while unloading, then no node (errno #2).
                        Err(Errno::ENXIO) | Err(Errno::ENOENT) => {}
                        Err(e) => panic!("open during unload: {e:?}"),
                    },
                }
                i += 1;
            }
        }));
    }
    let mut attempts = 0u64;
    loop {
        attempts += 1;
        ops.fetch_add(1, SeqCst);
        match xnu_sim::kextunload() {
            Ok(()) => break,
            Err(KextError::Busy) => unload_refusals += 1,
            Err(e) => panic!("unload: {e:?}"),
        }
        assert!(attempts < 100_000, "unload never succeeded");
        std::thread::sleep(Duration::from_micros(100));
    }
    unloaded.store(true, SeqCst);
    for (i, t) in racers.into_iter().enumerate() {
        join_within(t, BOUND, &format!("unload racer {i}"));
    }
    assert!(devices::node_names().is_empty(), "ST-2: no node");
    assert_no_leaks("after the racing unload");
    assert!(unload_refusals > 0, "ST-1: some attempt raced an open unit");
    figure("stress_rounds", rounds);
    figure("stress_ops", ops.load(SeqCst));
    figure("unload_refusals", unload_refusals);
    figure("leaks", 0);
}

/// RD-5, OUT-2, SEL-3, SEL-4 (no lost wake-up): a reader asleep in read, and one asleep in
/// select, are woken by every single enqueue. Ping-pong, one packet at a time per unit.
///
/// On odd rounds the packet is sent while the blocking reader is held asleep in `msleep`
/// (`hold_sleepers`) and the selector has recorded itself: the enqueue's wakeup must find the
/// reader (OUT-2), and the selector must then get the packet (SEL-3). On even rounds the
/// packet is sent as soon as the reader has handed over the previous one, racing it on its way
/// back to sleep (schedule perturbation widens that window). With the classic bug (unlock,
/// then `msleep` with a NULL mutex) a wakeup sent in that window finds no sleeper, and the
/// reader then sleeps with the packet queued.
///
/// The verdict is read from the simulated kernel's state, not from a clock: the wakeup found
/// no sleeper (`lost_wakeups` went up), and afterwards the reader is asleep (`sleeping_threads`)
/// while `FIONREAD` says the packet is still queued. A correct reader cannot be seen so: its
/// emptiness check and its sleep are one step under the unit mutex that the enqueue also
/// holds, so either the wakeup finds it asleep or it finds the packet. [`BOUND`] only turns a
/// hang of another kind into a failure.
#[test]
fn every_enqueue_wakes_a_sleeping_reader_and_selector() {
    use std::sync::mpsc::{channel, Receiver, TryRecvError};
    use xnu_sim::sleep::{hold_sleepers, lost_wakeups, sleeping_threads};

    boot_perturbed(0x5eed_0002);
    load();
    let rounds = scaled(400, 5000) as u64;
    let fd_block = open_unit(1);
    let fd_select = open_unit(2);
    configure("tun1");
    configure("tun2");
    let (tx_block, rx_block) = channel::<u64>();
    let (tx_select, rx_select) = channel::<u64>();
    // The only thread of this test that ever sleeps in msleep.
    let blocking = spawn(move || {
        for _ in 0..rounds {
            let mut buf = [0u8; 2048];
            let n = syscalls::read(fd_block, &mut buf).expect("RD-5 blocking read");
            tx_block.send(id_of(&buf[..n])).unwrap();
        }
    });
    let selecting = spawn(move || {
        for _ in 0..rounds {
            let (r, _) = syscalls::select(&[fd_select], &[], None).expect("select");
            assert_eq!(r, vec![fd_select], "SEL-1");
            let mut buf = [0u8; 2048];
            let n = syscalls::read(fd_select, &mut buf).expect("read after select");
            tx_select.send(id_of(&buf[..n])).unwrap();
        }
    });
    let queued = |fd: Fd| syscalls::ioctl_int(fd, tunnel::ioctl::FIONREAD, 0).expect("FIONREAD");
    let output = |unit: usize, id: u64| {
        stack::output(
            &name(unit),
            AF_INET,
            &sockaddr_in([10, 0, 0, 2]),
            &tagged(id),
        )
        .expect("O5")
    };
    // The next id a reader hands over; `lost` is asked at every turn meanwhile.
    let next = |rx: &Receiver<u64>, what: &str, lost: &mut dyn FnMut() -> bool| -> u64 {
        let mut got = None;
        wait_until(&format!("{what} neither read its packet nor slept"), || {
            match rx.try_recv() {
                Ok(id) => got = Some(id),
                Err(TryRecvError::Disconnected) => panic!("{what} ended early"),
                Err(TryRecvError::Empty) => assert!(
                    !lost(),
                    "lost wake-up (RD-5): {what}: the enqueue's wakeup found no sleeper, \
                     then the reader fell asleep with the packet queued"
                ),
            }
            got.is_some()
        });
        got.unwrap()
    };
    let mut raced = 0u64;
    for id in 0..rounds {
        let hold = (id % 2 == 1).then(|| {
            let hold = hold_sleepers();
            wait_until("the blocking reader never slept", || {
                sleeping_threads() == 1
            });
            wait_until("the selector never recorded itself", || {
                xnu_sim::leaks().select_records == 1
            });
            hold
        });
        let lost_before = lost_wakeups();
        output(1, id);
        let missed = lost_wakeups() - lost_before;
        if hold.is_some() {
            assert_eq!(
                missed, 0,
                "OUT-2: the enqueue's wakeup reached no sleeper on tun1"
            );
        } else {
            raced += missed;
        }
        drop(hold);
        output(2, id);
        let selected = next(
            &rx_select,
            &format!("the selector on tun2 (packet {id})"),
            &mut || false,
        );
        assert_eq!(selected, id, "SEL-4: FIFO, exactly once");
        // The wakeup found no sleeper, yet the reader is asleep with the packet queued. (In
        // this order: once queued() is seen > 0, the packet had not been read when the reader
        // was seen asleep.)
        let mut lost = || missed == 1 && sleeping_threads() >= 1 && queued(fd_block) > 0;
        let read = next(
            &rx_block,
            &format!("the reader of tun1 (packet {id})"),
            &mut lost,
        );
        assert_eq!(read, id, "RD-1: FIFO, exactly once");
    }
    join_within(blocking, BOUND, "blocking reader");
    join_within(selecting, BOUND, "select reader");
    syscalls::close(fd_block).unwrap();
    syscalls::close(fd_select).unwrap();
    figure("wakeup_rounds", rounds);
    figure("wakeup_races", raced);
    unload_clean();
}

/// RD-6, SEL-3, ST-1, ST-5: readers blocked on all sixteen units and selects pending on them;
/// unload attempts are refused and the sleepers go back to sleep (a packet still reaches
/// them); then close releases every one within a bound, with `ENXIO`.
#[test]
fn close_releases_every_sleeper_and_refused_unloads_leave_them_asleep() {
    boot_perturbed(0x5eed_0003);
    load();
    let fds: Vec<Fd> = (0..16).map(open_unit).collect();
    for u in 0..16 {
        configure(&name(u));
    }
    let mut readers = Vec::new();
    let mut selectors = Vec::new();
    for &fd in &fds {
        readers.push(spawn(move || {
            let mut got = Vec::new();
            loop {
                let mut buf = [0u8; 2048];
                match syscalls::read(fd, &mut buf) {
                    Ok(n) => got.push(id_of(&buf[..n])),
                    Err(e) => return (got, e),
                }
            }
        }));
        selectors.push(spawn(move || syscalls::select(&[fd], &[], None)));
    }
    // Everyone asleep (16 readers in msleep; the selects poll, then wait).
    let deadline = std::time::Instant::now() + BOUND;
    while xnu_sim::sleep::sleeping_threads() < 16 {
        assert!(std::time::Instant::now() < deadline, "readers never slept");
        std::thread::sleep(Duration::from_millis(1));
    }
    for _ in 0..scaled(5, 50) {
        assert_eq!(xnu_sim::kextunload(), Err(KextError::Busy), "ST-1");
    }
    // RD-6: refused, so the readers are still there and still get packets.
    for u in 0..16 {
        stack::output(
            &name(u),
            AF_INET,
            &sockaddr_in([10, 0, 0, 2]),
            &tagged(u as u64),
        )
        .unwrap();
    }
    for (u, fd) in fds.into_iter().enumerate() {
        syscalls::close(fd).unwrap();
        let _ = u;
    }
    for (u, r) in readers.into_iter().enumerate() {
        let (got, e) = join_within(r, BOUND, &format!("reader of tun{u}"));
        assert_eq!(e, Errno::ENXIO, "RD-6, errno #9");
        assert!(
            got.len() <= 1 && got.iter().all(|&id| id == u as u64),
            "{got:?}"
        );
    }
    for (u, s) in selectors.into_iter().enumerate() {
        let r = join_within(s, BOUND, &format!("select on tun{u}"));
        // SEL-1: readable (packet or closed); the descriptor may already be gone (EBADF).
        assert!(
            matches!(r, Ok((ref r, _)) if r.len() == 1) || r == Err(Errno::EBADF),
            "{r:?}"
        );
    }
    unload_clean();
}

/// ST-1 ("nothing changed"), U-3, errno #34: unload attempts refused because a unit is open
/// never make a concurrent call on another unit fail. Each attempt briefly closes the gate to
/// look; a caller arriving then waits for the answer instead of getting `ENXIO`. (Before this
/// was fixed, a `close` that hit that window failed and left its unit open for ever: every
/// later open was `EBUSY` and unload was refused until reboot.)
#[test]
fn refused_unload_attempts_never_fail_a_concurrent_open_close_write_or_ioctl() {
    boot_perturbed(0x5eed_0004);
    load();
    let anchor = open_unit(0); // keeps every attempt refused
    let stop = Arc::new(AtomicBool::new(false));
    let stop_ul = stop.clone();
    let unloader = spawn(move || {
        let mut attempts = 0u64;
        while !stop_ul.load(SeqCst) {
            assert_eq!(xnu_sim::kextunload(), Err(KextError::Busy), "ST-1");
            attempts += 1;
        }
        attempts
    });
    let iterations = scaled(1500, 20000);
    let mut calls = 0u64;
    for i in 0..iterations {
        let fd = syscalls::open("/dev/tun1", O_RDWR).unwrap_or_else(|e| {
            panic!("iteration {i}: open during a refused unload attempt: {e:?}")
        });
        syscalls::ioctl_int(fd, tunnel::ioctl::FIONBIO, 1)
            .unwrap_or_else(|e| panic!("iteration {i}: FIONBIO: {e:?}"));
        let packet = tagged(i as u64);
        assert_eq!(
            syscalls::write(fd, &packet),
            Ok(packet.len()),
            "iteration {i}: W8"
        );
        assert_eq!(
            syscalls::read(fd, &mut [0u8; 64]),
            Err(Errno::EAGAIN),
            "iteration {i}: RD-4, not ENXIO"
        );
        syscalls::close(fd).unwrap_or_else(|e| panic!("iteration {i}: close: {e:?}"));
        calls += 5;
    }
    stop.store(true, SeqCst);
    let attempts = join_within(unloader, BOUND, "unload attempts");
    assert!(attempts > 0);
    syscalls::close(anchor).unwrap();
    figure("stress_ops", calls + attempts);
    figure("unload_refusals", attempts);
    unload_clean();
}
