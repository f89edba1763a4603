//! The tap client path in-process (needs no FUSE, no root, no Linux tap): the VTun-like linker
//! joins the real driver's /dev/tap0 and /dev/tap1 through the syscall API (select, read,
//! write), frames enter as raw output the way the traffic host injects what a Linux tap emits
//! (docs/tap-contract.md section 17), and the frame-level input hook shows what `ether_demux`
//! made of each one.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;
use tunnel_sim::relay::TapRelay;
use tunnel_sim::tap_bridge::{classify, configure_sim_tap, forwards_to_linux, sim_mac, FrameKind};
use xnu_sim::netinspect::{self, FrameIn, M_BCAST, M_MCAST, M_PROMISC};
use xnu_sim::{stack, Errno};

fn frame_hook(name: &str) -> mpsc::Receiver<FrameIn> {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    netinspect::set_frame_in_hook(
        name,
        Some(Arc::new(move |frame: &FrameIn| {
            let _ = tx.lock().unwrap().send(frame.clone());
        })),
    );
    rx
}

fn ether(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An ARP request from `mac`/`ip` for `target` (what a Linux tap emits before its first ping).
fn arp_request(mac: [u8; 6], ip: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&mac);
    arp.extend_from_slice(&ip);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&target);
    ether([0xff; 6], mac, 0x0806, &arp)
}

/// TO5 + TR-1 on tap0, then TW8 + TN-1 on tap1, and back: frames injected as raw output on one
/// unit are read by the linker, written to the other and reach `ifnet_input` byte for byte;
/// `ether_demux` marks broadcast and multicast, leaves a frame for the unit's own MAC
/// unmarked, and marks a frame for any other unicast MAC `M_PROMISC` (the host does not pass
/// those on). No protocol is attached (the units are only up), so demux answers ENOENT.
#[test]
fn tap_linker_carries_frames_both_ways_and_demux_flags_them() {
    tunnel_sim::boot_and_load(true);
    let macs = [sim_mac(0).expect("tap0 MAC"), sim_mac(1).expect("tap1 MAC")];
    assert_ne!(macs[0], macs[1]);
    let in0 = frame_hook("tap0");
    let in1 = frame_hook("tap1");
    let relay = TapRelay::start(&configure_sim_tap).expect("linker");
    for name in ["tap0", "tap1"] {
        let flags = netinspect::interface(name).unwrap().flags;
        assert_eq!(flags & 0x41, 0x41, "{name}: up and running (TN-5)");
        assert!(
            netinspect::interface(name).unwrap().protocols.is_empty(),
            "{name}: nothing plumbed"
        );
    }
    let foreign = [0x02, 0x99, 0x99, 0x99, 0x99, 0x99];
    let mut ns = vec![0x60, 0, 0, 0, 0, 32, 58, 255];
    ns.extend_from_slice(&[0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    ns.extend_from_slice(&[0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 2]);
    ns.push(135);
    ns.resize(40 + 32, 0);
    // (raw output on, frame, where it must arrive, demux flags, what it is)
    struct Case<'a>(
        &'a str,
        Vec<u8>,
        &'a mpsc::Receiver<FrameIn>,
        u32,
        FrameKind,
    );
    let cases = [
        Case(
            "tap0",
            arp_request(macs[0], [10, 77, 0, 1], [10, 77, 0, 2]),
            &in1,
            M_BCAST,
            FrameKind::Arp,
        ),
        Case(
            "tap0",
            ether([0x33, 0x33, 0xff, 0, 0, 2], macs[0], 0x86dd, &ns),
            &in1,
            M_MCAST,
            FrameKind::NeighborSolicit,
        ),
        Case(
            "tap1",
            ether(macs[0], macs[1], 0x0800, &[0x45; 40]),
            &in0,
            0,
            FrameKind::Other,
        ),
        Case(
            "tap0",
            ether(foreign, macs[0], 0x0800, &[0x45; 40]),
            &in1,
            M_PROMISC,
            FrameKind::Other,
        ),
    ];
    for Case(name, frame, rx, flags, kind) in &cases {
        assert_eq!(classify(frame), *kind);
        stack::output_raw(name, frame).expect("raw output");
        let seen = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("linked to the other unit");
        assert_eq!(seen.bytes, *frame, "{name}: byte for byte");
        assert_eq!(
            seen.flags & (M_BCAST | M_MCAST | M_PROMISC),
            *flags,
            "{name}: demux flags"
        );
        assert_eq!(seen.demux, Err(Errno::ENOENT), "nothing attached");
        assert_eq!(forwards_to_linux(&seen), *flags != M_PROMISC);
    }
    let bytes = |which: &[usize]| -> u64 { which.iter().map(|&i| cases[i].1.len() as u64).sum() };
    let s0 = netinspect::interface("tap0").unwrap().stats;
    let s1 = netinspect::interface("tap1").unwrap().stats;
    assert_eq!(
        (s0.opackets, s0.obytes, s0.oerrors),
        (3, bytes(&[0, 1, 3]), 0)
    );
    assert_eq!(
        (s1.ipackets, s1.ibytes, s1.ierrors),
        (3, bytes(&[0, 1, 3]), 0)
    );
    assert_eq!((s1.opackets, s1.obytes, s1.oerrors), (1, bytes(&[2]), 0));
    assert_eq!((s0.ipackets, s0.ibytes, s0.ierrors), (1, bytes(&[2]), 0));
    relay.stop();
    netinspect::set_frame_in_hook("tap0", None);
    netinspect::set_frame_in_hook("tap1", None);
    driver_tests::unload_clean();
}

/// TI-1/TA-2: the MAC read through the device's SIOCGIFADDR is the interface's link address,
/// and it survives the close (the host reads it, closes, and the client opens later).
#[test]
fn tap_mac_read_by_the_host_is_the_link_address_and_stays() {
    tunnel_sim::boot_and_load(true);
    let mac = sim_mac(1).expect("tap1 MAC");
    assert_eq!(netinspect::interface("tap1").unwrap().lladdr, mac.to_vec());
    assert_eq!(mac[0] & 0x03, 0x02, "TA-1: unicast, locally administered");
    assert_eq!(mac[5], 1, "TA-1: byte 5 is the unit");
    assert_eq!(sim_mac(1).expect("again"), mac, "TA-2: stable across close");
    driver_tests::unload_clean();
}
