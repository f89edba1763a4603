//! Fault injection (issue 5; docs/tun-contract.md W4, W5, RD-8, U-5, LD-3, errno #6, #10, #16,
//! #17, #35): each allocation site and each failable KPI call made to fail in turn; each
//! failure gives the documented errno (or a clean load failure), counts what the contract
//! says, and leaks nothing.

mod common;

use common::*;
use driver_tests::*;
use xnu_sim::abi::{AF_INET, AF_INET6};
use xnu_sim::config::{clear_faults, fail_nth, fail_nth_call, fail_with_probability, faults_fired};
use xnu_sim::syscalls::{self, O_NONBLOCK, O_RDWR};
use xnu_sim::{devices, netinspect, stack, Errno, Fault, KextError};

fn up4(tag: u8) -> Vec<u8> {
    ipv4_udp([10, 0, 0, 2], [10, 0, 0, 1], &[tag; 32])
}

/// W4, errno #16, WR-1: the write path allocates at two sites (the packet chain, then the
/// frame header prepended in front of it). Failing each in turn gives `ENOBUFS`, counts an
/// input error, frees the partial packet, and the next write goes through.
#[test]
fn write_path_mbuf_failure_at_each_site_is_enobufs_and_leaks_nothing() {
    boot_strict(0x5eed_0201);
    load();
    let fd = open_unit(0);
    configure("tun0");
    let mut site = 1;
    loop {
        let before = netinspect::interface("tun0").unwrap().stats;
        let fired = faults_fired(Fault::MbufAlloc);
        fail_nth(Fault::MbufAlloc, site);
        let packet = up4(site as u8);
        let result = syscalls::write(fd, &packet);
        clear_faults();
        let after = netinspect::interface("tun0").unwrap().stats;
        if faults_fired(Fault::MbufAlloc) == fired {
            // Past the last site: the write went through.
            assert_eq!(result, Ok(packet.len()), "W9 once no allocation fails");
            assert_eq!(netinspect::take_received("tun0"), vec![(AF_INET, packet)]);
            break;
        }
        assert_eq!(result, Err(Errno::ENOBUFS), "site {site}: W4, errno #16");
        assert_eq!(after.ierrors, before.ierrors + 1, "site {site}: ierrors");
        assert_eq!(
            after.ipackets, before.ipackets,
            "site {site}: nothing input"
        );
        assert!(netinspect::take_received("tun0").is_empty(), "site {site}");
        assert_eq!(
            xnu_sim::leaks().mbufs,
            0,
            "site {site}: partial chain freed"
        );
        // And the very next write works.
        let again = up4(0xee);
        assert_eq!(syscalls::write(fd, &again), Ok(again.len()), "site {site}");
        assert_eq!(netinspect::take_received("tun0"), vec![(AF_INET, again)]);
        site += 1;
        assert!(site < 10, "the write path never stopped allocating");
    }
    assert_eq!(
        site, 2,
        "one allocation site: the packet chain, family word included"
    );
    syscalls::close(fd).unwrap();
    figure("faults", faults_fired_total());
    unload_clean();
}

/// OUT-5, O5: on output the driver allocates once, in the framer (the tag prepended for
/// output). Failing it gives `ENOBUFS` to the stack, frees the packet, queues nothing, and the
/// next packet is queued and read normally.
#[test]
fn output_path_mbuf_failure_in_the_framer_frees_the_packet() {
    boot_strict(0x5eed_0202);
    load();
    let fd = open_unit(1);
    configure("tun1");
    syscalls::fcntl_setfl(fd, O_NONBLOCK).unwrap();
    let mut site = 1;
    loop {
        let fired = faults_fired(Fault::MbufAlloc);
        fail_nth(Fault::MbufAlloc, site);
        let packet = ipv6_udp([0xfe; 16], [0xfd; 16], &[site as u8; 24]);
        let result = stack::output("tun1", AF_INET6, &sockaddr_in6([0xfd; 16]), &packet);
        clear_faults();
        let mut buf = [0u8; 256];
        if faults_fired(Fault::MbufAlloc) == fired {
            assert_eq!(result, Ok(()));
            let n = syscalls::read(fd, &mut buf).unwrap();
            assert_eq!(&buf[..n], &packet[..]);
            break;
        }
        assert_eq!(result, Err(Errno::ENOBUFS), "site {site}");
        assert_eq!(xnu_sim::leaks().mbufs, 0, "site {site}: packet freed");
        assert_eq!(
            syscalls::read(fd, &mut buf),
            Err(Errno::EAGAIN),
            "site {site}: nothing queued"
        );
        site += 1;
        assert!(site < 10, "the output path never stopped allocating");
    }
    assert_eq!(site, 2, "one allocation site on output: the framer's tag");
    syscalls::close(fd).unwrap();
    figure("faults", faults_fired_total());
    unload_clean();
}

/// W4, W5, RD-8, OUT-5 under load: allocation and copy faults at random while traffic flows
/// both ways. Every call ends in success or its documented errno, the input-error counter
/// matches the failed writes, and nothing leaks.
#[test]
fn random_mbuf_and_copy_faults_under_traffic_give_documented_errnos_only() {
    boot_perturbed(0x5eed_0203);
    load();
    let fd = open_unit(2);
    configure("tun2");
    syscalls::fcntl_setfl(fd, O_NONBLOCK).unwrap();
    fail_with_probability(Fault::MbufAlloc, 0.2);
    fail_with_probability(Fault::CopyIn, 0.05);
    fail_with_probability(Fault::CopyOut, 0.05);
    let rounds = scaled(400, 5000);
    let mut write_errors = 0u64;
    let mut delivered = 0u64;
    for i in 0..rounds {
        let packet = up4(i as u8);
        match syscalls::write(fd, &packet) {
            Ok(n) => assert_eq!(n, packet.len()),
            Err(Errno::ENOBUFS) | Err(Errno::EFAULT) => write_errors += 1, // W4, W5
            Err(e) => panic!("write {i}: {e:?}"),
        }
        let out = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], &[i as u8; 40]);
        match stack::output("tun2", AF_INET, &sockaddr_in([10, 0, 0, 2]), &out) {
            Ok(()) | Err(Errno::ENOBUFS) => {}
            Err(e) => panic!("output {i}: {e:?}"),
        }
        let mut buf = [0u8; 256];
        match syscalls::read(fd, &mut buf) {
            Ok(n) => {
                assert_eq!(&buf[..n], &out[..], "RD-1");
                delivered += 1;
            }
            // Nothing queued (the output failed), or RD-8: the copy faulted, packet consumed.
            Err(Errno::EAGAIN) | Err(Errno::EFAULT) => {}
            Err(e) => panic!("read {i}: {e:?}"),
        }
    }
    clear_faults();
    let stats = netinspect::interface("tun2").unwrap().stats;
    assert_eq!(stats.ierrors, write_errors, "W4/W5 count input errors");
    assert_eq!(
        stats.ipackets,
        rounds as u64 - write_errors,
        "every other write input"
    );
    assert!(
        delivered > 0 && write_errors > 0,
        "faults fired and traffic flowed"
    );
    assert!(faults_fired_total() > 0);
    syscalls::close(fd).unwrap();
    figure("faults", faults_fired_total());
    unload_clean();
}

/// U-5, errno #6: each failable KPI call of the first open fails in turn (ifnet_allocate,
/// ifnet_attach; protocols are plumbed later, by the addresses, U-8). Open returns the KPI
/// error, the unit stays closed and no interface is left; the next open completes, and unload
/// (with or without that open) leaves nothing behind.
#[test]
fn first_open_failure_at_each_step_is_enomem_and_the_next_open_completes() {
    boot_strict(0x5eed_0204);
    let mut step = 1;
    loop {
        for complete in [true, false] {
            load();
            fail_nth_call(step);
            let result = syscalls::open("/dev/tun3", O_RDWR);
            clear_faults();
            let fd = match result {
                Ok(fd) => fd,
                Err(e) => {
                    assert_eq!(e, Errno::ENOMEM, "step {step}: U-5, errno #6");
                    let info = netinspect::interface("tun3");
                    assert!(info.is_none(), "step {step}: no interface: {info:?}");
                    assert_eq!(xnu_sim::leaks().mbufs, 0);
                    if !complete {
                        unload_clean();
                        continue;
                    }
                    open_unit(3) // the unit stayed closed, so this is no EBUSY
                }
            };
            let info = netinspect::interface("tun3").unwrap();
            assert!(info.protocols.is_empty(), "step {step}: U-8, none at open");
            assert_eq!(info.bpf.map(|b| b.1), Some(4), "U-9");
            configure("tun3");
            assert_eq!(
                netinspect::interface("tun3").unwrap().protocols,
                vec![AF_INET, AF_INET6],
                "step {step}: plumbed by the addresses"
            );
            let packet = up4(step as u8);
            assert_eq!(syscalls::write(fd, &packet), Ok(packet.len()), "works");
            syscalls::close(fd).unwrap();
            unload_clean();
            if result.is_ok() {
                assert_eq!(step, 3, "two failable calls in the first open");
                figure("faults", faults_fired_total());
                return;
            }
        }
        step += 1;
        assert!(step < 10, "first open never succeeded");
    }
}

/// LD-3, errno #35: cdevsw_add failing, and devfs_make_node failing for each unit in turn,
/// fail the load with nothing left registered; the next load works.
#[test]
fn load_fails_cleanly_when_cdevsw_add_or_any_devfs_node_fails() {
    boot_strict(0x5eed_0205);
    fail_nth(Fault::CdevswAdd, 1);
    match xnu_sim::kextload(kmod()) {
        Err(KextError::StartFailed(leaks)) => assert!(leaks.is_clean(), "{leaks:?}"),
        r => panic!("cdevsw_add failure: {r:?}"),
    }
    for node in 1..=16 {
        fail_nth(Fault::DevfsMakeNode, node);
        match xnu_sim::kextload(kmod()) {
            Err(KextError::StartFailed(leaks)) => {
                assert!(leaks.is_clean(), "node {node}: {leaks:?}")
            }
            r => panic!("devfs_make_node {node} failure: {r:?}"),
        }
        assert!(
            devices::node_names().is_empty(),
            "node {node}: no node left"
        );
        clear_faults();
    }
    assert_eq!(faults_fired(Fault::DevfsMakeNode), 16);
    load();
    let fd = open_unit(15);
    syscalls::close(fd).unwrap();
    figure("faults", faults_fired_total());
    unload_clean();
}

/// W5, RD-8, errno #10, #17: a copy-in fault fails the write with `EFAULT` (input error, chain
/// freed); a copy-out fault fails the read with `EFAULT` and the packet is consumed.
#[test]
fn copy_faults_are_efault_and_free_the_packet() {
    boot_strict(0x5eed_0206);
    load();
    let fd = open_unit(4);
    configure("tun4");
    fail_nth(Fault::CopyIn, 1);
    assert_eq!(syscalls::write(fd, &up4(1)), Err(Errno::EFAULT), "W5");
    assert_eq!(netinspect::interface("tun4").unwrap().stats.ierrors, 1);
    assert_eq!(xnu_sim::leaks().mbufs, 0, "W5: chain freed");
    let out = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], b"lost to a fault");
    stack::output("tun4", AF_INET, &sockaddr_in([10, 0, 0, 2]), &out).unwrap();
    fail_nth(Fault::CopyOut, 1);
    assert_eq!(
        syscalls::read(fd, &mut [0u8; 256]),
        Err(Errno::EFAULT),
        "RD-8"
    );
    assert_eq!(xnu_sim::leaks().mbufs, 0, "RD-8: packet consumed and freed");
    syscalls::fcntl_setfl(fd, O_NONBLOCK).unwrap();
    assert_eq!(syscalls::read(fd, &mut [0u8; 256]), Err(Errno::EAGAIN));
    syscalls::close(fd).unwrap();
    figure("faults", faults_fired_total());
    unload_clean();
}
