//! select(2) (docs/tun-contract.md section 9) and close(2) (section 10), with the counters and the
//! debug dump of section 12.

use driver_tests::*;
use std::time::Duration;
use tunnel::ioctl::{FIONREAD, TUNGIFHEAD, TUNSDEBUG, TUNSIFHEAD, TUNSIFMODE};
use xnu_sim::abi::*;
use xnu_sim::config::{self, Fault};
use xnu_sim::syscalls::{self, ioctl_int, O_ASYNC, O_NONBLOCK};
use xnu_sim::{netinspect, proc, socket, stack, Errno};

const ZERO: Option<Duration> = Some(Duration::ZERO);

/// Section 9 test, SEL-1, SEL-2, SEL-4: zero-timeout select on an empty queue → writable, not
/// readable; after one enqueue → readable; after reading it → not.
#[test]
fn select_readable_iff_a_packet_is_queued_sel1() {
    boot_and_load();
    let fd = open_unit(0);
    configure("tun0");
    assert_eq!(syscalls::select(&[fd], &[fd], ZERO), Ok((vec![], vec![fd])));
    send_ipv4("tun0", &ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], b"s")).unwrap();
    assert_eq!(
        syscalls::select(&[fd], &[fd], ZERO),
        Ok((vec![fd], vec![fd]))
    );
    syscalls::read(fd, &mut [0u8; 100]).unwrap();
    assert_eq!(syscalls::select(&[fd], &[], ZERO), Ok((vec![], vec![])));
    // SEL-2 while down too: write never blocks.
    stack::set_flags("tun0", 0, IFF_UP).unwrap();
    assert_eq!(syscalls::select(&[], &[fd], ZERO), Ok((vec![], vec![fd])));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// SEL-3, SEL-4: no lost wake-up: a selector parked in select is woken by a packet enqueued
/// from another thread, many times over.
#[test]
fn a_parked_selector_is_woken_by_an_enqueue_from_another_thread_sel3() {
    boot_and_load();
    let fd = open_unit(1);
    configure("tun1");
    for round in 0..50u8 {
        let selector = proc::spawn_thread(proc::INIT_PID, move || {
            syscalls::select(&[fd], &[], Some(Duration::from_secs(20)))
        });
        if round % 2 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        send_ipv4("tun1", &ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], &[round])).unwrap();
        assert_eq!(selector.join(), Ok((vec![fd], vec![])), "round {round}");
        syscalls::read(fd, &mut [0u8; 100]).unwrap();
    }
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// SEL-1, SEL-3, errno #9: revoke wakes a parked selector, which then finds the unit readable
/// (read fails with ENXIO at once).
#[test]
fn revoke_wakes_a_parked_selector_sel3() {
    boot_and_load();
    let fd = open_unit(2);
    let selector = proc::spawn_thread(proc::INIT_PID, move || {
        syscalls::select(&[fd], &[], Some(Duration::from_secs(20)))
    });
    std::thread::sleep(Duration::from_millis(20));
    assert!(!selector.is_finished());
    syscalls::revoke("/dev/tun2").unwrap();
    assert_eq!(selector.join(), Ok((vec![fd], vec![])));
    assert_eq!(syscalls::read(fd, &mut [0u8; 10]), Err(Errno::ENXIO));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// ST-1, ST-5, SEL-3: an unload attempt with a select pending is refused with nothing changed;
/// the selector still gets its packet; after close the unload is clean (selthreadclear).
#[test]
fn unload_with_a_pending_select_is_refused_then_clean_sel3() {
    boot_and_load();
    let fd = open_unit(3);
    configure("tun3");
    let selector = proc::spawn_thread(proc::INIT_PID, move || {
        syscalls::select(&[fd], &[], Some(Duration::from_secs(20)))
    });
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(xnu_sim::kextunload(), Err(xnu_sim::KextError::Busy));
    send_ipv4("tun3", &ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], b"s")).unwrap();
    assert_eq!(selector.join(), Ok((vec![fd], vec![])));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// Section 10 steps 1..7 and its test: after close, no inet/inet6 address (link-local too),
/// flags POINTOPOINT|MULTICAST, MTU 1500, status "closed", output EHOSTDOWN, counters kept;
/// after reopening, TUNGIFHEAD 0, FIONREAD 0, blocking, no owner.
#[test]
fn close_restores_every_creation_default() {
    boot_and_load();
    let fd = open_unit(4);
    ioctl_int(fd, TUNSIFMODE, 0x8002).unwrap();
    stack::add_address("tun4", AF_INET, &[10, 0, 0, 1]).unwrap();
    stack::add_address("tun4", AF_INET, &[10, 0, 0, 9]).unwrap();
    stack::add_address("tun4", AF_INET6, &V6_LOCAL).unwrap();
    stack::add_address("tun4", AF_INET6, &V6_LINK_LOCAL).unwrap();
    // NOARP, and IFF_DEBUG and IFF_LINK0 (0x4, 0x1000): SIOCSIFFLAGS edits step 5 undoes.
    stack::set_flags("tun4", IFF_NOARP | 0x4 | 0x1000, IFF_MULTICAST).unwrap();
    stack::set_mtu("tun4", 1280).unwrap();
    ioctl_int(fd, TUNSIFHEAD, 1).unwrap();
    syscalls::fcntl_setfl(fd, O_NONBLOCK | O_ASYNC).unwrap();
    syscalls::fcntl_setown(fd, proc::INIT_PID).unwrap();
    let p = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], b"purged");
    send_ipv4("tun4", &p).unwrap();
    send_ipv4("tun4", &p).unwrap();
    let before = counters(4);
    syscalls::close(fd).unwrap();
    let i = netinspect::interface("tun4").unwrap();
    assert!(i.addresses.is_empty(), "step 4: {:?}", i.addresses);
    assert_eq!(i.flags, IFF_POINTOPOINT | IFF_MULTICAST, "steps 3, 5");
    assert_eq!((i.mtu, i.baudrate), (1500, 0));
    assert_eq!(
        i.state,
        netinspect::IfState::Attached,
        "step 7: stays attached"
    );
    assert_eq!(if_status("tun4"), "\tclosed\n", "pid cleared");
    assert_eq!(xnu_sim::mbuf::live_mbufs(), 0, "step 2: queue purged");
    assert_eq!(counters(4), before, "counters kept, not adjusted");
    let removed: Vec<_> = socket::removed_addresses()
        .into_iter()
        .map(|(n, f, _)| (n, f))
        .collect();
    assert_eq!(removed.len(), 4, "through in-kernel sockets: {removed:?}");
    stack::set_flags("tun4", IFF_UP, 0).unwrap();
    assert_eq!(send_ipv4("tun4", &p), Err(Errno::EHOSTDOWN));
    let fd = open_unit(4);
    assert_eq!(ioctl_int(fd, TUNGIFHEAD, 0), Ok(0));
    assert_eq!(ioctl_int(fd, FIONREAD, 0), Ok(0));
    assert_eq!(ioctl_int(fd, tunnel::ioctl::TIOCGPGRP, 0), Ok(0));
    assert_eq!(
        if_status("tun4"),
        format!("\topen (pid {})\n", proc::INIT_PID)
    );
    let reader = proc::spawn_thread(proc::INIT_PID, move || syscalls::read(fd, &mut [0u8; 10]));
    wait_for_sleepers(1); // blocking again
    syscalls::revoke("/dev/tun4").unwrap();
    assert_eq!(reader.join(), Err(Errno::ENXIO));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// Section 10 step 4: an address that cannot be removed is logged and counted, and close still
/// succeeds; the next close removes it.
#[test]
fn address_removal_failures_are_counted_and_close_succeeds() {
    boot_and_load();
    let fd = open_unit(5);
    stack::add_address("tun5", AF_INET6, &V6_LOCAL).unwrap();
    config::fail_nth(Fault::SockSocket, 1);
    assert_eq!(syscalls::close(fd), Ok(()));
    assert_eq!(counters(5).address_removal_failures, 1);
    assert_eq!(netinspect::interface("tun5").unwrap().addresses.len(), 1);
    assert!(xnu_sim::log::log_lines()
        .iter()
        .any(|l| l.contains("tun5") && l.contains("family 30")));
    let fd = open_unit(5);
    syscalls::close(fd).unwrap();
    assert!(netinspect::interface("tun5").unwrap().addresses.is_empty());
    assert_eq!(xnu_sim::leaks().sockets, 0);
    unload_clean();
}

/// ST-3: unload removes the addresses an admin configured on a closed interface.
#[test]
fn unload_removes_addresses_left_on_a_closed_interface_st3() {
    boot_and_load();
    let fd = open_unit(6);
    syscalls::close(fd).unwrap();
    stack::add_address("tun6", AF_INET, &[192, 168, 7, 1]).unwrap();
    stack::add_address("tun6", AF_INET6, &V6_LOCAL).unwrap();
    unload_clean();
    let removed = socket::removed_addresses();
    assert_eq!(
        removed,
        vec![
            ("tun6".to_string(), AF_INET, vec![192, 168, 7, 1]),
            ("tun6".to_string(), AF_INET6, V6_LOCAL.to_vec())
        ]
    );
}

/// Section 12: the counters in the interface statistics and the debug dump (one kernel-log
/// line at close when TUNSDEBUG ≠ 0; none when 0).
#[test]
fn debug_dump_logs_one_line_per_close_when_debug_is_on() {
    boot_and_load();
    let fd = open_unit(7);
    configure("tun7");
    let p = ipv4_udp([10, 0, 0, 2], [10, 0, 0, 1], b"count me");
    syscalls::write(fd, &p).unwrap();
    send_ipv4("tun7", &p).unwrap();
    syscalls::read(fd, &mut [0u8; 10]).unwrap(); // truncated
    syscalls::close(fd).unwrap();
    let dumps = |unit: &str| {
        xnu_sim::log::log_lines()
            .into_iter()
            .filter(|l| l.contains(&format!("{unit}: ipackets")))
            .collect::<Vec<_>>()
    };
    assert!(dumps("tun7").is_empty(), "debug level 0: no dump");
    let fd = open_unit(7);
    ioctl_int(fd, TUNSDEBUG, 1).unwrap();
    syscalls::close(fd).unwrap();
    let lines = dumps("tun7");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let l = &lines[0];
    let n = p.len();
    for part in [
        format!("ipackets 1 ibytes {n}"),
        format!("opackets 1 obytes {n}"),
        "truncated 1".to_string(),
        "qdrops 0".to_string(),
        "addr-failures 0".to_string(),
    ] {
        assert!(l.contains(&part), "{part} in {l}");
    }
    let c = counters(7);
    let s = if_stats("tun7");
    assert_eq!(
        (c.ipackets, c.ibytes, c.opackets, c.obytes, c.ierrors, c.oerrors, c.iqdrops),
        (s.ipackets, s.ibytes, s.opackets, s.obytes, s.ierrors, s.oerrors, s.iqdrops),
        "the unit counters mirror the interface statistics"
    );
    unload_clean();
}

/// SEL-5: poll and kqueue are not promised: the private `cdevsw_setkqueueok` opt-in is not in
/// the driver's KPI table, so the kext cannot import it (clients use select, tested above).
#[test]
fn the_private_kqueue_opt_in_is_not_linked_sel5() {
    let table = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shim/kpi-symbols.txt"
    ))
    .unwrap();
    assert!(table.lines().any(|l| l.starts_with("_selrecord ")));
    assert!(!table.contains("cdevsw_setkqueueok"));
}
