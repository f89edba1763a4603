//! Framing, read(2) and write(2) on /dev/tapN (docs/tap-contract.md sections 4 to 6): TF-1..TF-4,
//! TR-1 (RD-1..RD-9 for frames), the write table TW1..TW8 in order, and TW-1..TW-3.

use driver_tests::tap::*;
use driver_tests::*;
use tunnel::ioctl::FIONBIO;
use xnu_sim::abi::*;
use xnu_sim::config::{self, Fault};
use xnu_sim::proc::{self, Handler};
use xnu_sim::syscalls::{self, ioctl_int, O_NONBLOCK};
use xnu_sim::{netinspect, stack, Errno, Fd};

const SIGUSR1: i32 = 30;

/// Opens `/dev/tapN` and brings tapN up (`ifconfig tapN up`): (fd, name, MAC).
fn up_tap(n: usize) -> (Fd, String, [u8; 6]) {
    let fd = open_tap(n);
    let name = tap_name(n);
    stack::set_flags(&name, IFF_UP, 0).unwrap();
    let mac = mac_of(&name);
    (fd, name, mac)
}

/// A frame of `len` bytes in all, to `dst`, of type `ether_type`, its payload counting up.
fn sized(dst: [u8; 6], ether_type: u16, len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..len - 14).map(|i| i as u8).collect();
    frame(dst, PEER_MAC, ether_type, &payload)
}

/// TF-1: one write (`writev` concatenated) is one frame, one read one frame, with no prefix of
/// any kind: the bytes read start with the destination MAC.
#[test]
fn one_write_and_one_read_are_one_frame_without_prefix_tf1() {
    boot_and_load();
    let (fd, name, mac) = up_tap(0);
    let f = sized(mac, 0x88b5, 300);
    assert_eq!(
        syscalls::writev(fd, &[&f[..6], &f[6..13], &f[13..14], &f[14..]]),
        Ok(f.len())
    );
    let seen = netinspect::frames_in(&name);
    assert_eq!(seen.len(), 1, "one frame");
    assert_eq!(seen[0].bytes, f, "concatenated, as written");
    let out: Vec<Vec<u8>> = [60, 1514, 14, 200]
        .into_iter()
        .map(|len| sized(PEER_MAC, ETHERTYPE_IP, len))
        .collect();
    for o in &out {
        stack::output_raw(&name, o).unwrap();
    }
    assert_eq!(
        read_frame(fd),
        out[0],
        "no AF header, sockaddr or vnet header"
    );
    let mut a = [0u8; 100];
    let mut b = vec![0u8; 3000];
    let n = syscalls::readv(fd, &mut [&mut a, &mut b]).unwrap();
    assert_eq!(
        n, 1514,
        "readv: one frame over both buffers, not two frames"
    );
    assert_eq!([&a[..], &b[..1414]].concat(), out[1]);
    assert_eq!(read_frame(fd), out[2]);
    assert_eq!(read_frame(fd), out[3]);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TF-2: beyond its own checks the driver parses nothing: runts under 60 bytes pass both ways
/// unpadded, trailing bytes (an FCS) stay, an 802.1Q tag is neither added nor stripped.
#[test]
fn frames_pass_unpadded_with_tags_and_trailers_as_they_are_tf2() {
    boot_and_load();
    let (fd, name, mac) = up_tap(1);
    configure_tap(&name, Some(fd), TAP_IP);
    let mut sent = Vec::new();
    for len in [15usize, 20, 42, 59] {
        let f = sized(mac, 0x88b5, len);
        assert_eq!(syscalls::write(fd, &f), Ok(len), "{len}: legal");
        sent.push(f);
    }
    let mut fcs = ipv4_frame(mac, b"with a trailer");
    fcs.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(syscalls::write(fd, &fcs), Ok(fcs.len()));
    sent.push(fcs.clone());
    let vlan0 = tagged_frame(
        mac,
        PEER_MAC,
        0,
        ETHERTYPE_IP,
        &ipv4_udp(PEER_IP, TAP_IP, b"t"),
    );
    assert_eq!(syscalls::write(fd, &vlan0), Ok(vlan0.len()));
    sent.push(vlan0);
    let seen: Vec<Vec<u8>> = netinspect::frames_in(&name)
        .into_iter()
        .map(|f| f.bytes)
        .collect();
    assert_eq!(seen, sent, "each frame reached the stack byte for byte");
    assert_eq!(
        netinspect::received(&name).len(),
        2,
        "IPv4 demuxed, the tag by XNU"
    );
    for len in [14usize, 20, 59] {
        let f = sized(PEER_MAC, ETHERTYPE_IP, len);
        stack::output_raw(&name, &f).unwrap();
        assert_eq!(read_frame(fd), f, "{len}: read unpadded");
    }
    stack::output_raw(&name, &fcs).unwrap();
    assert_eq!(read_frame(fd), fcs);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TF-3: a write takes 14..65535 bytes; the MTU is not enforced (frames above MTU + 14, + 18
/// tagged, and jumbo frames go through, also with a small MTU).
#[test]
fn writes_take_up_to_65535_bytes_whatever_the_mtu_tf3() {
    boot_and_load();
    let (fd, name, mac) = up_tap(2);
    stack::set_mtu(&name, 576).unwrap();
    let lens = [1500usize, 1515, 1519, 9014, 65535];
    for len in lens {
        assert_eq!(
            syscalls::write(fd, &sized(mac, 0x88b5, len)),
            Ok(len),
            "{len}"
        );
    }
    let s = if_stats(&name);
    assert_eq!(s.ipackets, lens.len() as u64);
    assert_eq!(s.ibytes, lens.iter().sum::<usize>() as u64);
    assert_eq!(syscalls::write(fd, &vec![0u8; 65536]), Err(Errno::EIO));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TF-4, TW-3: BPF sees whole frames, Ethernet header included, in both directions
/// (`DLT_EN10MB`), also a frame for another station.
#[test]
fn bpf_sees_whole_frames_both_ways_tf4() {
    boot_and_load();
    let (fd, name, mac) = up_tap(3);
    let whole = |t: &netinspect::Tap| [t.header.clone(), t.packet.clone()].concat();
    for dst in [mac, OTHER_MAC, BROADCAST] {
        let f = ipv4_frame(dst, b"in");
        syscalls::write(fd, &f).unwrap();
        let t = netinspect::taps(&name).pop().unwrap();
        assert_eq!((t.outbound, t.dlt), (false, DLT_EN10MB));
        assert_eq!(whole(&t), f);
    }
    let g = sized(PEER_MAC, ETHERTYPE_IPV6, 90);
    stack::output_raw(&name, &g).unwrap();
    let t = netinspect::taps(&name).pop().unwrap();
    assert_eq!((t.outbound, t.dlt), (true, DLT_EN10MB));
    assert_eq!(whole(&t), g);
    assert_eq!(netinspect::untapped(&name), 0);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TR-1 (RD-1, RD-2, RD-3, RD-9): one frame per read in FIFO order; a short buffer gets the
/// frame's first bytes, the rest is freed and counted, the next read gets the next frame; a
/// zero-length read consumes nothing; reads move no interface counter.
#[test]
fn reads_return_one_frame_truncate_and_count_tr1() {
    boot_and_load();
    let (fd, name, _) = up_tap(4);
    let first = sized(PEER_MAC, ETHERTYPE_IP, 200);
    let second = sized(PEER_MAC, ETHERTYPE_ARP, 42);
    stack::output_raw(&name, &first).unwrap();
    stack::output_raw(&name, &second).unwrap();
    let stats = if_stats(&name);
    assert_eq!(syscalls::read(fd, &mut []), Ok(0), "RD-3");
    assert_eq!(queued(fd), 200, "RD-3: nothing consumed");
    let mut small = [0u8; 20];
    assert_eq!(syscalls::read(fd, &mut small), Ok(20));
    assert_eq!(&small[..], &first[..20]);
    assert_eq!(tap_counters(4).truncated_reads, 1, "RD-2");
    assert_eq!(read_frame(fd), second, "RD-2: the next frame, whole");
    assert_eq!(tap_counters(4).truncated_reads, 1);
    assert_eq!(if_stats(&name), stats, "RD-9");
    assert_eq!(xnu_sim::mbuf::live_mbufs(), 0, "the tail was freed");
    syscalls::close(fd).unwrap();
    unload_clean();
}

fn blocked_reader(fd: Fd) -> proc::SimThread<Result<Vec<u8>, Errno>> {
    let before = xnu_sim::sleep::sleeping_threads();
    let t = proc::spawn_thread(proc::INIT_PID, move || {
        let mut buf = vec![0u8; 2048];
        syscalls::read(fd, &mut buf).map(|n| buf[..n].to_vec())
    });
    wait_for_sleepers(before + 1);
    t
}

/// TR-1 (RD-4, RD-5, RD-6): empty and non-blocking (the descriptor's flag or the unit's own
/// `FIONBIO`) → `EAGAIN`; a blocking reader sleeps until a frame is queued, a signal ends it
/// with `EINTR`, revoke with `ENXIO`, and a stale descriptor reads `ENXIO`.
#[test]
fn empty_reads_are_eagain_or_sleep_until_a_frame_signal_or_revoke_tr1() {
    boot_and_load();
    let (fd, name, _) = up_tap(5);
    syscalls::ioctl_direct(fd, FIONBIO, &mut 1i32.to_ne_bytes()).unwrap();
    assert_eq!(
        syscalls::read(fd, &mut [0u8; 64]),
        Err(Errno::EAGAIN),
        "RD-4"
    );
    syscalls::ioctl_direct(fd, FIONBIO, &mut 0i32.to_ne_bytes()).unwrap();
    syscalls::fcntl_setfl(fd, O_NONBLOCK).unwrap();
    assert_eq!(
        syscalls::read(fd, &mut [0u8; 64]),
        Err(Errno::EAGAIN),
        "RD-4"
    );
    syscalls::fcntl_setfl(fd, 0).unwrap();
    let reader = blocked_reader(fd);
    let f = sized(PEER_MAC, ETHERTYPE_IP, 99);
    stack::output_raw(&name, &f).unwrap();
    assert_eq!(reader.join(), Ok(f), "RD-5: woken by the enqueue");
    proc::sigaction(proc::INIT_PID, SIGUSR1, Some(Handler { restart: false }));
    let reader = blocked_reader(fd);
    proc::kill_thread(reader.tid(), SIGUSR1);
    assert_eq!(reader.join(), Err(Errno::EINTR), "RD-5");
    let reader = blocked_reader(fd);
    syscalls::revoke("/dev/tap5").unwrap();
    assert_eq!(reader.join(), Err(Errno::ENXIO), "RD-6");
    assert_eq!(
        syscalls::read(fd, &mut [0u8; 64]),
        Err(Errno::ENXIO),
        "stale"
    );
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TR-1 (RD-7, RD-8): frames queued while up stay readable when tapN goes down, and an empty
/// queue is then `EAGAIN`, never `EIO`; a copy-out fault is `EFAULT` and consumes the frame.
#[test]
fn reads_work_while_down_and_a_fault_consumes_the_frame_tr1() {
    boot_and_load();
    let (fd, name, _) = up_tap(6);
    let lost = sized(PEER_MAC, ETHERTYPE_IP, 70);
    let kept = sized(PEER_MAC, ETHERTYPE_IP, 80);
    stack::output_raw(&name, &lost).unwrap();
    stack::output_raw(&name, &kept).unwrap();
    stack::set_flags(&name, 0, IFF_UP).unwrap();
    config::fail_nth(Fault::CopyOut, 1);
    assert_eq!(
        syscalls::read(fd, &mut [0u8; 100]),
        Err(Errno::EFAULT),
        "RD-8"
    );
    assert_eq!(
        read_frame(fd),
        kept,
        "RD-7 while down; RD-8 the first is gone"
    );
    syscalls::fcntl_setfl(fd, O_NONBLOCK).unwrap();
    assert_eq!(
        syscalls::read(fd, &mut [0u8; 100]),
        Err(Errno::EAGAIN),
        "not EIO"
    );
    assert_eq!(xnu_sim::mbuf::live_mbufs(), 0);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TW1: a write of 0 bytes returns 0 and counts nothing.
#[test]
fn a_zero_byte_write_returns_zero_tw1() {
    boot_and_load();
    let (fd, name, _) = up_tap(7);
    assert_eq!(syscalls::write(fd, &[]), Ok(0));
    assert_eq!(if_stats(&name), netinspect::IfStats::default());
    assert!(netinspect::frames_in(&name).is_empty());
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TW2, TW3: more than 65535 bytes → `EIO`, 1..13 bytes (no whole header) → `EINVAL`, each
/// counted in ierrors; nothing reaches the stack.
#[test]
fn oversized_and_headerless_writes_fail_tw2_tw3() {
    boot_and_load();
    let (fd, name, mac) = up_tap(8);
    for len in [65536usize, 65537, 100_000] {
        let mut f = vec![0u8; len];
        f[..6].copy_from_slice(&mac);
        assert_eq!(syscalls::write(fd, &f), Err(Errno::EIO), "TW2 {len}");
    }
    for len in 1..=13usize {
        assert_eq!(
            syscalls::write(fd, &mac.repeat(3)[..len]),
            Err(Errno::EINVAL),
            "TW3"
        );
    }
    let s = if_stats(&name);
    assert_eq!((s.ierrors, s.ipackets, s.iqdrops), (16, 0, 0));
    assert_eq!(tap_counters(8).ierrors, 16);
    assert!(netinspect::frames_in(&name).is_empty());
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TW4, TW5: no mbufs → `ENOBUFS`, a copy-in fault → `EFAULT`; each counted in ierrors, the
/// partial chain freed, the next write fine.
#[test]
fn mbuf_exhaustion_and_copy_faults_fail_and_free_tw4_tw5() {
    boot_and_load();
    let (fd, name, mac) = up_tap(9);
    let f = sized(mac, 0x88b5, 3000);
    config::fail_nth(Fault::MbufAlloc, 1);
    assert_eq!(syscalls::write(fd, &f), Err(Errno::ENOBUFS), "TW4");
    assert_eq!(xnu_sim::mbuf::live_mbufs(), 0);
    config::fail_nth(Fault::CopyIn, 1);
    assert_eq!(syscalls::write(fd, &f), Err(Errno::EFAULT), "TW5");
    assert_eq!(xnu_sim::mbuf::live_mbufs(), 0);
    assert_eq!(if_stats(&name).ierrors, 2);
    assert!(netinspect::frames_in(&name).is_empty());
    assert_eq!(syscalls::write(fd, &f), Ok(f.len()));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TW6, TW-1: a header without payload, or an 802.3 length with fewer than 8 payload bytes
/// (what `ether_demux` reads unchecked for SAP/SNAP), returns its length, is dropped and
/// counted as an input drop; 8 payload bytes, or any payload after an ethertype, go to the
/// stack (the SNAP probe reads them inside the frame).
#[test]
fn runts_ether_demux_would_read_past_are_dropped_tw6() {
    boot_and_load();
    let (fd, name, mac) = up_tap(10);
    let mut drops = 0;
    assert_eq!(
        syscalls::write(fd, &frame(mac, PEER_MAC, ETHERTYPE_IP, &[])),
        Ok(14)
    );
    drops += 1;
    for len_field in [0u16, 46, 1500] {
        for payload in 0..8usize {
            let f = frame(mac, PEER_MAC, len_field, &vec![0xaa; payload]);
            assert_eq!(
                syscalls::write(fd, &f),
                Ok(f.len()),
                "{len_field}/{payload}"
            );
            drops += 1;
        }
    }
    let s = if_stats(&name);
    assert_eq!((s.iqdrops, s.ipackets, s.ierrors), (drops, 0, 0));
    assert!(
        netinspect::frames_in(&name).is_empty(),
        "none reached ifnet_input"
    );
    let snap = frame(mac, PEER_MAC, 8, &[0xaa, 0xaa, 3, 0, 0, 0, 8, 0]);
    let ether2 = frame(mac, PEER_MAC, 1501, &[1]);
    for f in [&snap, &ether2] {
        assert_eq!(syscalls::write(fd, f), Ok(f.len()), "TW8");
    }
    let seen = netinspect::frames_in(&name);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].demux, Err(Errno::ENOENT), "SNAP: nothing attached");
    assert_eq!(if_stats(&name).ipackets, 2);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TW7: while tapN is down a write returns its length, the frame is dropped, an input drop.
#[test]
fn writes_while_down_are_dropped_and_counted_tw7() {
    boot_and_load();
    let fd = open_tap(11);
    let f = ipv4_frame(mac_of("tap11"), b"nobody home");
    assert_eq!(syscalls::write(fd, &f), Ok(f.len()));
    let s = if_stats("tap11");
    assert_eq!((s.iqdrops, s.ierrors, s.ipackets), (1, 0, 0));
    assert_eq!(tap_counters(11).iqdrops, 1);
    assert!(netinspect::frames_in("tap11").is_empty());
    assert_eq!(xnu_sim::mbuf::live_mbufs(), 0);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TW8, TW-3: otherwise the frame is tapped, then given to `ifnet_input`: ipackets + 1, ibytes +
/// the whole frame, in the interface statistics and the unit counters; the destination MAC is
/// not examined (another station's frame goes up too, and `ether_demux` flags it).
#[test]
fn an_accepted_frame_is_counted_whole_and_input_tw8() {
    boot_and_load();
    let (fd, name, mac) = up_tap(12);
    configure_tap(&name, Some(fd), TAP_IP);
    let mine = ipv4_frame(mac, &[7; 77]);
    let other = ipv4_frame(OTHER_MAC, &[8; 33]);
    for f in [&mine, &other] {
        assert_eq!(syscalls::write(fd, f), Ok(f.len()));
    }
    let s = if_stats(&name);
    let total = (mine.len() + other.len()) as u64;
    assert_eq!((s.ipackets, s.ibytes), (2, total));
    let c = tap_counters(12);
    assert_eq!((c.ipackets, c.ibytes), (2, total));
    let seen = netinspect::frames_in(&name);
    assert_eq!(seen[0].demux, Ok(AF_INET));
    assert_eq!(seen[1].flags & netinspect::M_PROMISC, netinspect::M_PROMISC);
    assert_eq!(
        netinspect::received(&name),
        [(AF_INET, mine[14..].to_vec())],
        "TN-1: dlil drops the promiscuous one"
    );
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TW1..TW8 in order, the first match deciding: with an allocation fault armed, `EIO` and
/// `EINVAL` come first (no allocation tried); a 14-byte frame meets TW4 and TW5 before TW6; a
/// 14-byte frame while down is TW6 (a drop either way).
#[test]
fn the_write_checks_run_in_table_order_tw_order() {
    boot_and_load();
    let fd = open_tap(13);
    let mac = mac_of("tap13");
    config::fail_nth(Fault::MbufAlloc, 1);
    assert_eq!(
        syscalls::write(fd, &vec![0u8; 65536]),
        Err(Errno::EIO),
        "TW2"
    );
    assert_eq!(syscalls::write(fd, &mac), Err(Errno::EINVAL), "TW3");
    assert_eq!(
        config::faults_fired(Fault::MbufAlloc),
        0,
        "no allocation yet"
    );
    let header_only = frame(mac, PEER_MAC, ETHERTYPE_IP, &[]);
    assert_eq!(
        syscalls::write(fd, &header_only),
        Err(Errno::ENOBUFS),
        "TW4 < TW6"
    );
    config::fail_nth(Fault::CopyIn, 1);
    assert_eq!(
        syscalls::write(fd, &header_only),
        Err(Errno::EFAULT),
        "TW5 < TW6"
    );
    assert_eq!(
        syscalls::write(fd, &header_only),
        Ok(14),
        "TW6 (down: TW7 too)"
    );
    let s = if_stats("tap13");
    assert_eq!((s.ierrors, s.iqdrops), (4, 1));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TW-1, TW-2: every accepted frame reaches `ifnet_input` as `ether_demux` reads it: the
/// header right before the data in the first mbuf, with the first min(len − 14, 8) payload
/// bytes (the simulator checks it, with chains fragmented at random), `pkthdr.len` = len − 14,
/// `rcvif` = tapN; 802.1Q frames are untagged (VLAN 0) or answered `PF_VLAN` by the demux,
/// which reads the tag where the layout puts it.
#[test]
fn accepted_frames_have_the_layout_ether_demux_reads_tw2() {
    boot_and_load();
    let (fd, name, mac) = up_tap(14);
    configure_tap(&name, Some(fd), TAP_IP);
    let sizes = [
        15usize, 16, 21, 22, 23, 60, 110, 111, 112, 224, 238, 239, 320, 1514, 2047, 2048, 2049,
        2062, 2063, 4096, 9014, 16384, 16398, 65535,
    ];
    let mut expected = Vec::new();
    for len in sizes {
        for (ty, demux) in [(ETHERTYPE_IP, Ok(AF_INET)), (0x88b5, Err(Errno::ENOENT))] {
            let f = sized(mac, ty, len);
            assert_eq!(syscalls::write(fd, &f), Ok(len), "{len}");
            expected.push((f, demux));
        }
        let inner = ipv4_udp(PEER_IP, TAP_IP, &vec![len as u8; len.saturating_sub(46)]);
        for (vlan, demux) in [(0u16, Ok(AF_INET)), (5, Ok(netinspect::PF_VLAN))] {
            let f = tagged_frame(mac, PEER_MAC, vlan, ETHERTYPE_IP, &inner);
            assert_eq!(syscalls::write(fd, &f), Ok(f.len()), "{len} vlan {vlan}");
            expected.push((f, demux));
        }
    }
    let seen: Vec<_> = netinspect::frames_in(&name)
        .into_iter()
        .map(|f| (f.bytes, f.demux))
        .collect();
    assert_eq!(seen.len(), expected.len());
    for (k, (got, want)) in seen.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "frame {k} of {} bytes", want.0.len());
    }
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TW-3, WR-2: a write never sleeps: 300 writes with nobody reading all return at once.
#[test]
fn writes_never_sleep_tw3() {
    boot_and_load();
    let (fd, name, mac) = up_tap(15);
    let f = ipv4_frame(mac, b"fire and forget");
    for _ in 0..300 {
        assert_eq!(syscalls::write(fd, &f), Ok(f.len()));
    }
    assert_eq!(xnu_sim::sleep::sleeping_threads(), 0);
    assert_eq!(if_stats(&name).ipackets, 300);
    assert_eq!(
        ioctl_int(fd, tunnel::ioctl::FIONREAD, 0),
        Ok(0),
        "nothing queued back"
    );
    syscalls::close(fd).unwrap();
    unload_clean();
}
