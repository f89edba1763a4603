//! Fault injection on tap units (issue 14; docs/tap-contract.md TW4, TW5, TR-1 (RD-8), TO5,
//! TU-2 (U-5), TC-3, TL-3, errno #6, #10, #16, #17): each allocation site and each failable
//! KPI call made to fail in turn; each failure gives the documented errno, counts what the
//! contract says, and leaks nothing.

mod common;

use common::*;
use driver_tests::tap::*;
use driver_tests::*;
use xnu_sim::abi::*;
use xnu_sim::config::{clear_faults, fail_nth, fail_nth_call, fail_with_probability, faults_fired};
use xnu_sim::syscalls::{self, O_NONBLOCK, O_RDWR};
use xnu_sim::{netinspect, stack, Errno, Fault, KextError};

/// TW4, errno #16, TW-2: for frames of several sizes, failing each allocation of the write
/// path in turn gives `ENOBUFS`, one input error, nothing input and nothing leaked, and the
/// next write goes through; the sites are counted per size.
#[test]
fn write_path_mbuf_failure_at_each_site_is_enobufs_tw4() {
    boot_strict(0x7a9_0201);
    load();
    let fd = open_tap(0);
    stack::set_flags("tap0", IFF_UP, 0).unwrap();
    let mac = mac_of("tap0");
    for len in [14usize, 60, 1514, 2062, 9014, 65535] {
        let f = frame(mac, PEER_MAC, 0x88b5, &vec![len as u8; len - 14]);
        let mut site = 1;
        loop {
            let before = if_stats("tap0");
            let fired = faults_fired(Fault::MbufAlloc);
            fail_nth(Fault::MbufAlloc, site);
            let r = syscalls::write(fd, &f);
            clear_faults();
            let after = if_stats("tap0");
            if faults_fired(Fault::MbufAlloc) == fired {
                assert_eq!(r, Ok(len), "{len}: past the last site");
                break;
            }
            assert_eq!(r, Err(Errno::ENOBUFS), "{len} site {site}");
            assert_eq!(after.ierrors, before.ierrors + 1, "{len} site {site}");
            assert_eq!(
                (after.ipackets, after.iqdrops),
                (before.ipackets, before.iqdrops)
            );
            assert_eq!(
                xnu_sim::leaks().mbufs,
                0,
                "{len} site {site}: partial chain freed"
            );
            assert_eq!(
                syscalls::write(fd, &f),
                Ok(len),
                "{len} site {site}: next one"
            );
            site += 1;
            assert!(site < 10, "{len}: the write path never stopped allocating");
        }
        assert_eq!(site, 2, "{len}: one allocation per write");
    }
    syscalls::close(fd).unwrap();
    figure("faults", faults_fired_total());
    unload_clean();
}

/// TO5, TO-1: the tap output path allocates nothing in the driver (the frame arrives whole),
/// so an armed allocation fault does not fire there and the frame is queued and read.
#[test]
fn the_output_path_allocates_nothing_to5() {
    boot_strict(0x7a9_0202);
    load();
    let fd = open_tap(1);
    stack::set_flags("tap1", IFF_UP, 0).unwrap();
    let f = frame(PEER_MAC, mac_of("tap1"), ETHERTYPE_IP, &[1; 100]);
    fail_nth(Fault::MbufAlloc, 1);
    assert_eq!(stack::output_raw("tap1", &f), Ok(()));
    assert_eq!(faults_fired(Fault::MbufAlloc), 0, "no allocation on output");
    clear_faults();
    assert_eq!(read_frame(fd), f);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TW4, TW5, TR-1 (RD-8), TO-3 under load: allocation and copy faults at random while frames
/// flow both ways, with ARP answered by the reader. Every call ends in success or its
/// documented errno, ierrors match the failed writes, and nothing leaks.
#[test]
fn random_mbuf_and_copy_faults_under_tap_traffic_give_documented_errnos_only() {
    boot_perturbed(0x7a9_0203);
    load();
    let fd = open_tap(2);
    configure_tap("tap2", Some(fd), TAP_IP);
    link_peer("tap2");
    syscalls::fcntl_setfl(fd, O_NONBLOCK).unwrap();
    let mac = mac_of("tap2");
    fail_with_probability(Fault::MbufAlloc, 0.2);
    fail_with_probability(Fault::CopyIn, 0.05);
    fail_with_probability(Fault::CopyOut, 0.05);
    let rounds = scaled(400, 5000);
    let (mut write_errors, mut delivered) = (0u64, 0u64);
    for i in 0..rounds {
        let up = ipv4_frame(mac, &[i as u8; 40]);
        match syscalls::write(fd, &up) {
            Ok(n) => assert_eq!(n, up.len()),
            Err(Errno::ENOBUFS) | Err(Errno::EFAULT) => write_errors += 1,
            Err(e) => panic!("write {i}: {e:?}"),
        }
        let p = ipv4_udp(TAP_IP, PEER_IP, &[i as u8; 48]);
        match stack::output("tap2", AF_INET, &sockaddr_in(PEER_IP), &p) {
            // EJUSTRETURN: ether_frameout's prepend failed (the stack's allocation).
            Ok(()) | Err(Errno::EJUSTRETURN) => {}
            Err(e) => panic!("output {i}: {e:?}"),
        }
        let mut buf = [0u8; 256];
        match syscalls::read(fd, &mut buf) {
            Ok(n) => {
                assert_eq!(&buf[14..n], &p[..], "TR-1");
                delivered += 1;
            }
            Err(Errno::EAGAIN) | Err(Errno::EFAULT) => {}
            Err(e) => panic!("read {i}: {e:?}"),
        }
    }
    clear_faults();
    let s = if_stats("tap2");
    assert_eq!(s.ierrors, write_errors, "TW4/TW5 count input errors");
    assert_eq!(s.ipackets, rounds as u64 - write_errors);
    assert!(
        delivered > 0 && write_errors > 0,
        "faults fired and traffic flowed"
    );
    syscalls::close(fd).unwrap();
    figure("faults", faults_fired_total());
    unload_clean();
}

/// The peer's ARP entry, so output needs no resolution.
fn link_peer(name: &str) {
    xnu_sim::link::arp_set(name, PEER_IP, PEER_MAC).unwrap();
}

/// TU-2 (U-5), errno #6: each failable KPI call of a tap unit's first open fails in turn;
/// open answers `ENOMEM`, the unit stays closed and no interface is left; the next open
/// completes (with a MAC, BPF, XNU's plumbing), and unload leaves nothing behind.
#[test]
fn first_tap_open_failure_at_each_step_is_enomem_tu2() {
    boot_strict(0x7a9_0204);
    let mut step = 1;
    loop {
        load();
        fail_nth_call(step);
        let result = syscalls::open("/dev/tap3", O_RDWR);
        clear_faults();
        let fd = match result {
            Ok(fd) => fd,
            Err(e) => {
                assert_eq!(e, Errno::ENOMEM, "step {step}");
                assert!(netinspect::interface("tap3").is_none(), "step {step}");
                open_tap(3)
            }
        };
        let i = netinspect::interface("tap3").unwrap();
        assert_eq!(i.bpf, Some((DLT_EN10MB, 14)), "step {step}");
        assert_eq!(i.lladdr.len(), 6, "step {step}: TA-1");
        configure_tap("tap3", Some(fd), TAP_IP);
        assert_eq!(netinspect::interface("tap3").unwrap().protocols, [AF_INET]);
        syscalls::close(fd).unwrap();
        unload_clean();
        if result.is_ok() {
            assert_eq!(step, 3, "two failable calls in a tap's first open");
            break;
        }
        step += 1;
        assert!(step < 10, "first open never succeeded");
    }
}

/// TC-3, section 14: an address close cannot remove (no in-kernel socket) is logged and
/// counted; close still succeeds and the next close removes it.
#[test]
fn address_removal_failures_at_close_are_counted_tc3() {
    boot_strict(0x7a9_0205);
    load();
    let fd = open_tap(4);
    stack::add_address("tap4", AF_INET6, &TAP_IP6).unwrap();
    fail_nth(Fault::SockSocket, 1);
    assert_eq!(syscalls::close(fd), Ok(()));
    assert_eq!(tap_counters(4).address_removal_failures, 1);
    assert_eq!(netinspect::interface("tap4").unwrap().addresses.len(), 1);
    assert!(xnu_sim::log::log_lines()
        .iter()
        .any(|l| l.contains("tap4") && l.contains("family 30")));
    syscalls::close(open_tap(4)).unwrap();
    assert!(netinspect::interface("tap4").unwrap().addresses.is_empty());
    unload_clean();
}

/// TL-3: a protocol-detach failure cannot hit a tap (the driver detaches none: XNU's plumbers
/// attached them), and a failing `ifnet_detach` of a tap next to a tun keeps both kinds loaded
/// and working; the retry is clean.
#[test]
fn unload_faults_with_both_kinds_keep_the_driver_working_tl3() {
    boot_strict(0x7a9_0206);
    load();
    let fd = open_tap(5);
    configure_tap("tap5", Some(fd), TAP_IP);
    syscalls::close(fd).unwrap();
    fail_nth(Fault::IfnetDetachProtocol, 1);
    assert_eq!(
        xnu_sim::kextunload(),
        Ok(()),
        "no driver-attached protocol on tap"
    );
    clear_faults();
    assert_no_leaks("protocol-detach fault with a tap only");
    load();
    let tun = open_unit(5);
    syscalls::close(tun).unwrap();
    let fd = open_tap(5);
    syscalls::close(fd).unwrap();
    fail_nth(Fault::IfnetDetach, 2); // tun5 detaches first, then tap5
    assert_eq!(xnu_sim::kextunload(), Err(KextError::Busy));
    clear_faults();
    assert_eq!(
        netinspect::interface("tap5").unwrap().state,
        netinspect::IfState::Attached
    );
    let fd = open_tap(5);
    stack::set_flags("tap5", IFF_UP, 0).unwrap();
    let f = frame(mac_of("tap5"), PEER_MAC, 0x88b5, b"still here");
    assert_eq!(syscalls::write(fd, &f), Ok(f.len()));
    syscalls::close(fd).unwrap();
    // tun5's detached callback may still be leaving the driver (its gate reference): an attempt
    // then is refused (ST-1), a later one succeeds.
    for attempt in 0.. {
        match xnu_sim::kextunload() {
            Ok(()) => break,
            Err(KextError::Busy) => assert!(attempt < 1_000_000, "unload never succeeded"),
            Err(e) => panic!("unload: {e:?}"),
        }
        std::thread::yield_now();
    }
    assert_no_leaks("after the retried unload");
}
