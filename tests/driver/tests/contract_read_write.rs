//! read(2) and write(2) on /dev/tunN (docs/tun-contract.md sections 4 and 5): RD-1..RD-9, the write
//! table W1..W9 in order, WR-1..WR-4, and readv/writev as one packet.

use driver_tests::*;
use std::time::Duration;
use tunnel::ioctl::{FIONBIO, FIONREAD, TUNSIFHEAD};
use xnu_sim::abi::*;
use xnu_sim::config::{self, Fault};
use xnu_sim::proc::{self, Handler};
use xnu_sim::syscalls::{self, ioctl_int, O_NONBLOCK};
use xnu_sim::{netinspect, stack, Errno};

const SIGUSR1: i32 = 30;

fn v4(payload: &[u8]) -> Vec<u8> {
    ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], payload)
}

/// RD-1, OUT-3: one packet per read, in FIFO order, never two, never split.
#[test]
fn a_read_returns_exactly_one_packet_in_fifo_order_rd1() {
    boot_and_load();
    let fd = open_unit(0);
    configure("tun0");
    let packets: Vec<Vec<u8>> = (0..5).map(|i| v4(&vec![i as u8; 10 + i * 7])).collect();
    for p in &packets {
        send_ipv4("tun0", p).unwrap();
    }
    for p in &packets {
        let mut buf = vec![0u8; 65536];
        let n = syscalls::read(fd, &mut buf).unwrap();
        assert_eq!(&buf[..n], &p[..]);
    }
    syscalls::fcntl_setfl(fd, O_NONBLOCK).unwrap();
    assert_eq!(syscalls::read(fd, &mut [0u8; 100]), Err(Errno::EAGAIN));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// RD-2, RD-9: a short buffer gets the first `len` bytes, the rest is freed and counted; the
/// next read gets the next packet. No other counter moves on read.
#[test]
fn a_short_read_truncates_counts_and_moves_on_rd2() {
    boot_and_load();
    let fd = open_unit(1);
    configure("tun1");
    let first = v4(&[1; 100]);
    let second = v4(&[2; 50]);
    send_ipv4("tun1", &first).unwrap();
    send_ipv4("tun1", &second).unwrap();
    let stats = if_stats("tun1");
    let mut small = [0u8; 40];
    assert_eq!(syscalls::read(fd, &mut small), Ok(40));
    assert_eq!(&small[..], &first[..40]);
    assert_eq!(counters(1).truncated_reads, 1);
    let mut buf = [0u8; 200];
    let n = syscalls::read(fd, &mut buf).unwrap();
    assert_eq!(&buf[..n], &second[..]);
    assert_eq!(
        counters(1).truncated_reads,
        1,
        "a fitting read is not truncated"
    );
    assert_eq!(
        if_stats("tun1"),
        stats,
        "RD-9: reads change no interface counter"
    );
    // AF mode: a buffer shorter than the header.
    ioctl_int(fd, TUNSIFHEAD, 1).unwrap();
    send_ipv4("tun1", &first).unwrap();
    let mut tiny = [0u8; 3];
    assert_eq!(syscalls::read(fd, &mut tiny), Ok(3));
    assert_eq!(tiny, [0, 0, 0]);
    assert_eq!(counters(1).truncated_reads, 2);
    assert_eq!(xnu_sim::mbuf::live_mbufs(), 0, "the tails were freed");
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// RD-3: read of 0 bytes returns 0 and consumes nothing.
#[test]
fn a_zero_length_read_consumes_nothing_rd3() {
    boot_and_load();
    let fd = open_unit(2);
    configure("tun2");
    let p = v4(b"keep me");
    send_ipv4("tun2", &p).unwrap();
    assert_eq!(syscalls::read(fd, &mut []), Ok(0));
    assert_eq!(ioctl_int(fd, FIONREAD, 0), Ok(p.len() as i32));
    let mut buf = [0u8; 100];
    assert_eq!(syscalls::read(fd, &mut buf), Ok(p.len()));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// RD-4: the unit's own FIONBIO flag (reached directly, the descriptor stays blocking) makes an
/// empty read EAGAIN.
#[test]
fn the_units_fionbio_flag_alone_makes_reads_nonblocking_rd4() {
    boot_and_load();
    let fd = open_unit(3);
    syscalls::ioctl_direct(fd, FIONBIO, &mut 1i32.to_ne_bytes()).unwrap();
    assert_eq!(syscalls::fcntl_getfl(fd).unwrap() & O_NONBLOCK, 0);
    assert_eq!(syscalls::read(fd, &mut [0u8; 64]), Err(Errno::EAGAIN));
    syscalls::close(fd).unwrap();
    unload_clean();
}

fn blocked_reader(fd: xnu_sim::Fd) -> proc::SimThread<Result<Vec<u8>, Errno>> {
    let before = xnu_sim::sleep::sleeping_threads();
    let t = proc::spawn_thread(proc::INIT_PID, move || {
        let mut buf = vec![0u8; 2048];
        syscalls::read(fd, &mut buf).map(|n| buf[..n].to_vec())
    });
    wait_for_sleepers(before + 1);
    t
}

/// RD-5, errno #8: a signal without SA_RESTART ends a blocking read with EINTR.
#[test]
fn a_signal_interrupts_a_blocking_read_with_eintr_rd5() {
    boot_and_load();
    let fd = open_unit(4);
    proc::sigaction(proc::INIT_PID, SIGUSR1, Some(Handler { restart: false }));
    let reader = blocked_reader(fd);
    proc::kill_thread(reader.tid(), SIGUSR1);
    assert_eq!(reader.join(), Err(Errno::EINTR));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// RD-5, errno #8: with SA_RESTART the sleep returns ERESTART unchanged, the call restarts
/// and then gets the packet.
#[test]
fn a_signal_with_sa_restart_restarts_the_read_rd5() {
    boot_and_load();
    let fd = open_unit(5);
    configure("tun5");
    proc::sigaction(proc::INIT_PID, SIGUSR1, Some(Handler { restart: true }));
    let reader = blocked_reader(fd);
    proc::kill_thread(reader.tid(), SIGUSR1);
    // Restarted: asleep again.
    std::thread::sleep(Duration::from_millis(50));
    wait_for_sleepers(1);
    assert!(!reader.is_finished());
    let p = v4(b"after restart");
    send_ipv4("tun5", &p).unwrap();
    assert_eq!(reader.join(), Ok(p));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// RD-6, SEL-3, errno #9: a reader asleep is woken by revoke (d_close) and fails with ENXIO.
#[test]
fn revoke_wakes_a_sleeping_reader_with_enxio_rd6() {
    boot_and_load();
    let fd = open_unit(6);
    let reader = blocked_reader(fd);
    syscalls::revoke("/dev/tun6").unwrap();
    assert_eq!(reader.join(), Err(Errno::ENXIO));
    assert_eq!(
        syscalls::read(fd, &mut [0u8; 10]),
        Err(Errno::ENXIO),
        "stale descriptor"
    );
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// RD-6, ST-1, ST-5: an unload attempt wakes the sleeper, which goes back to sleep (the unit is
/// open, so unload is refused) and later gets its packet.
#[test]
fn an_unload_attempt_wakes_the_reader_which_sleeps_again_rd6() {
    boot_and_load();
    let fd = open_unit(7);
    configure("tun7");
    let reader = blocked_reader(fd);
    assert_eq!(xnu_sim::kextunload(), Err(xnu_sim::KextError::Busy));
    std::thread::sleep(Duration::from_millis(20));
    wait_for_sleepers(1);
    assert!(!reader.is_finished(), "the reader went back to sleep");
    let p = v4(b"still served");
    send_ipv4("tun7", &p).unwrap();
    assert_eq!(reader.join(), Ok(p));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// RD-7, errno #12: reading works while the interface is down: queued packets stay readable
/// and an empty queue is EAGAIN, never EIO.
#[test]
fn reads_work_while_the_interface_is_down_rd7() {
    boot_and_load();
    let fd = open_unit(8);
    configure("tun8");
    let p = v4(b"queued while up");
    send_ipv4("tun8", &p).unwrap();
    stack::set_flags("tun8", 0, IFF_UP).unwrap();
    let mut buf = [0u8; 200];
    assert_eq!(syscalls::read(fd, &mut buf), Ok(p.len()));
    syscalls::fcntl_setfl(fd, O_NONBLOCK).unwrap();
    assert_eq!(syscalls::read(fd, &mut buf), Err(Errno::EAGAIN));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// RD-8, errno #10: a copy-out fault is EFAULT and the packet is consumed and freed.
#[test]
fn a_copy_out_fault_is_efault_and_consumes_the_packet_rd8() {
    boot_and_load();
    let fd = open_unit(9);
    configure("tun9");
    send_ipv4("tun9", &v4(b"lost")).unwrap();
    let next = v4(b"next");
    send_ipv4("tun9", &next).unwrap();
    config::fail_nth(Fault::CopyOut, 1);
    let mut buf = [0u8; 200];
    assert_eq!(syscalls::read(fd, &mut buf), Err(Errno::EFAULT));
    assert_eq!(
        syscalls::read(fd, &mut buf),
        Ok(next.len()),
        "the faulted packet is gone"
    );
    assert_eq!(xnu_sim::mbuf::live_mbufs(), 0);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// W1, errno #13: a write of 0 bytes returns 0 and counts nothing.
#[test]
fn a_zero_byte_write_returns_zero_w1() {
    boot_and_load();
    let fd = open_unit(10);
    configure("tun10");
    let stats = if_stats("tun10");
    assert_eq!(syscalls::write(fd, &[]), Ok(0));
    assert_eq!(if_stats("tun10"), stats);
    assert!(netinspect::received("tun10").is_empty());
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// W2, WR-4, errno #14: above TUNMRU (+4 in AF mode) → EIO and ierrors; up to it is accepted,
/// whatever the MTU.
#[test]
fn writes_above_tunmru_fail_with_eio_and_the_mtu_is_not_enforced_w2() {
    boot_and_load();
    let fd = open_unit(11);
    configure("tun11");
    let mut big = vec![0u8; 65536];
    big[0] = 0x45;
    assert_eq!(syscalls::write(fd, &big), Err(Errno::EIO));
    assert_eq!(if_stats("tun11").ierrors, 1);
    assert_eq!(
        syscalls::write(fd, &big[..65535]),
        Ok(65535),
        "TUNMRU itself is fine"
    );
    let jumbo = v4(&[7; 9000]);
    assert_eq!(
        syscalls::write(fd, &jumbo),
        Ok(jumbo.len()),
        "WR-4: MTU 1500 not enforced"
    );
    ioctl_int(fd, TUNSIFHEAD, 1).unwrap();
    let mut af = vec![0u8, 0, 0, 2];
    af.extend_from_slice(&big);
    assert_eq!(
        syscalls::write(fd, &af),
        Err(Errno::EIO),
        "65540 in AF mode"
    );
    assert_eq!(syscalls::write(fd, &af[..65539]), Ok(65539));
    assert_eq!(if_stats("tun11").ierrors, 2);
    assert_eq!(netinspect::received("tun11").len(), 3);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// W3, W7, errno #15: in AF mode 1..3 bytes → EINVAL (ierrors); exactly the header → 4,
/// dropped and counted as an input drop.
#[test]
fn short_af_mode_writes_w3_and_header_only_writes_w7() {
    boot_and_load();
    let fd = open_unit(12);
    configure("tun12");
    ioctl_int(fd, TUNSIFHEAD, 1).unwrap();
    for len in 1..=3 {
        assert_eq!(syscalls::write(fd, &[0, 0, 0][..len]), Err(Errno::EINVAL));
    }
    assert_eq!(if_stats("tun12").ierrors, 3);
    assert_eq!(syscalls::write(fd, &[0, 0, 0, 2]), Ok(4));
    assert_eq!(if_stats("tun12").iqdrops, 1);
    assert_eq!(counters(12).iqdrops, 1);
    assert!(netinspect::received("tun12").is_empty());
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// W4, errno #16: mbuf exhaustion → ENOBUFS, ierrors, nothing leaked.
#[test]
fn mbuf_exhaustion_is_enobufs_with_nothing_leaked_w4() {
    boot_and_load();
    let fd = open_unit(13);
    configure("tun13");
    config::fail_nth(Fault::MbufAlloc, 1);
    let p = v4(&[3; 3000]);
    assert_eq!(syscalls::write(fd, &p), Err(Errno::ENOBUFS));
    assert_eq!(config::faults_fired(Fault::MbufAlloc), 1);
    assert_eq!(xnu_sim::mbuf::live_mbufs(), 0);
    assert_eq!(if_stats("tun13").ierrors, 1);
    assert!(netinspect::received("tun13").is_empty());
    // One allocation per write: the family word shares the packet's chain. The next
    // allocation failing is again the packet's own.
    config::fail_nth(Fault::MbufAlloc, 1);
    assert_eq!(syscalls::write(fd, &p), Err(Errno::ENOBUFS));
    assert_eq!(xnu_sim::mbuf::live_mbufs(), 0);
    assert_eq!(syscalls::write(fd, &p), Ok(p.len()), "works again");
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// W5, errno #17: a copy-in fault → EFAULT, the chain is freed, ierrors.
#[test]
fn a_copy_in_fault_is_efault_and_frees_the_chain_w5() {
    boot_and_load();
    let fd = open_unit(14);
    configure("tun14");
    config::fail_nth(Fault::CopyIn, 1);
    assert_eq!(syscalls::write(fd, &v4(&[1; 500])), Err(Errno::EFAULT));
    assert_eq!(xnu_sim::mbuf::live_mbufs(), 0);
    assert_eq!(if_stats("tun14").ierrors, 1);
    assert_eq!(counters(14).ierrors, 1);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// W8, errno #19: while the interface is down a write returns its full length, the packet is
/// freed and counted as an input drop.
#[test]
fn writes_while_down_are_dropped_and_counted_w8() {
    boot_and_load();
    let fd = open_unit(15);
    let p = v4(b"nobody home");
    assert_eq!(syscalls::write(fd, &p), Ok(p.len()));
    assert!(netinspect::received("tun15").is_empty());
    assert_eq!(if_stats("tun15").iqdrops, 1);
    assert_eq!(if_stats("tun15").ierrors, 0);
    assert_eq!(xnu_sim::mbuf::live_mbufs(), 0);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// W9, WR-1: the packet reaches the protocol attached to tunN, counted with ibytes = len − hdr
/// in the interface statistics and the unit counters.
#[test]
fn an_accepted_write_is_counted_and_delivered_w9() {
    boot_and_load();
    let fd = open_unit(0);
    configure("tun0");
    ioctl_int(fd, TUNSIFHEAD, 1).unwrap();
    let p = v4(&[9; 77]);
    let mut w = vec![0, 0, 0, 2];
    w.extend_from_slice(&p);
    assert_eq!(syscalls::write(fd, &w), Ok(w.len()));
    assert_eq!(netinspect::received("tun0"), vec![(AF_INET, p.clone())]);
    let s = if_stats("tun0");
    assert_eq!((s.ipackets, s.ibytes), (1, p.len() as u64));
    let c = counters(0);
    assert_eq!((c.ipackets, c.ibytes), (1, p.len() as u64));
    assert_eq!(netinspect::stack_drops("tun0"), 0, "demux found PF_INET");
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// WR-2: writes never wait for a reader or queue space: 300 writes with nobody reading all
/// return at once.
#[test]
fn writes_never_sleep_wr2() {
    boot_and_load();
    let fd = open_unit(1);
    configure("tun1");
    let p = v4(b"fire and forget");
    for _ in 0..300 {
        assert_eq!(syscalls::write(fd, &p), Ok(p.len()));
    }
    assert_eq!(xnu_sim::sleep::sleeping_threads(), 0);
    assert_eq!(netinspect::received("tun1").len(), 300);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// WR-3: only the version nibble is looked at: the single byte 0x45 is written (1) and handed
/// to the stack, which deals with the runt itself.
#[test]
fn the_ip_header_is_not_validated_wr3() {
    boot_and_load();
    let fd = open_unit(2);
    configure("tun2");
    assert_eq!(syscalls::write(fd, &[0x45]), Ok(1));
    assert_eq!(netinspect::received("tun2"), vec![(AF_INET, vec![0x45])]);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// writev concatenates its iovecs into one packet; readv fills its buffers from one packet
/// (section 5 preamble, RD-1).
#[test]
fn writev_and_readv_carry_one_packet() {
    boot_and_load();
    let fd = open_unit(3);
    configure("tun3");
    let p = v4(&[0xab; 300]);
    assert_eq!(
        syscalls::writev(fd, &[&p[..10], &p[10..11], &p[11..]]),
        Ok(p.len())
    );
    assert_eq!(netinspect::received("tun3"), vec![(AF_INET, p.clone())]);
    ioctl_int(fd, TUNSIFHEAD, 1).unwrap();
    assert_eq!(syscalls::writev(fd, &[&[0, 0, 0, 2], &p]), Ok(p.len() + 4));
    assert_eq!(netinspect::received("tun3").len(), 2);
    send_ipv4("tun3", &p).unwrap();
    send_ipv4("tun3", &p).unwrap();
    let mut hdr = [0u8; 4];
    let mut a = vec![0u8; 100];
    let mut b = vec![0u8; 1000];
    let n = syscalls::readv(fd, &mut [&mut hdr, &mut a, &mut b]).unwrap();
    assert_eq!(n, 4 + p.len(), "one packet, not two");
    assert_eq!(hdr, [0, 0, 0, 2]);
    assert_eq!([&a[..], &b[..p.len() - 100]].concat(), p);
    syscalls::close(fd).unwrap();
    unload_clean();
}
