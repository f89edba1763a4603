//! The output path, stack → device (docs/tun-contract.md section 6): O1..O5 in order and
//! OUT-1..OUT-5.

use driver_tests::*;
use std::time::Duration;
use tunnel::ioctl::FIOASYNC;
use xnu_sim::abi::*;
use xnu_sim::syscalls::{self, ioctl_int, O_NONBLOCK};
use xnu_sim::{netinspect, proc, stack, Errno};

fn v4(payload: &[u8]) -> Vec<u8> {
    ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], payload)
}

/// O1, errno #20, section 10 step 1: after close, output is EHOSTDOWN, freed, oerrors.
#[test]
fn output_to_a_closed_unit_is_ehostdown_o1() {
    boot_and_load();
    let fd = open_unit(0);
    configure("tun0");
    syscalls::close(fd).unwrap();
    // An admin brings the closed interface up again: still EHOSTDOWN, the unit is not open.
    stack::set_flags("tun0", IFF_UP | IFF_RUNNING, 0).unwrap();
    assert_eq!(send_ipv4("tun0", &v4(b"x")), Err(Errno::EHOSTDOWN));
    assert_eq!(if_stats("tun0").oerrors, 1);
    assert_eq!(counters(0).oerrors, 1);
    assert_eq!(xnu_sim::mbuf::live_mbufs(), 0);
    unload_clean();
}

/// O2, errno #21: output while the interface is down is EHOSTDOWN, freed, oerrors. (Before
/// any address the stack has no protocol on tunN and refuses by itself: ENXIO, U-8.)
#[test]
fn output_while_down_is_ehostdown_o2() {
    boot_and_load();
    let fd = open_unit(1);
    assert_eq!(
        send_ipv4("tun1", &v4(b"x")),
        Err(Errno::ENXIO),
        "U-8: not plumbed"
    );
    assert_eq!(if_stats("tun1").oerrors, 0, "the driver was not called");
    configure("tun1");
    stack::set_flags("tun1", 0, IFF_UP).unwrap();
    assert_eq!(send_ipv4("tun1", &v4(b"x")), Err(Errno::EHOSTDOWN));
    assert_eq!(if_stats("tun1").oerrors, 1);
    assert_eq!(xnu_sim::mbuf::live_mbufs(), 0);
    assert!(
        netinspect::taps("tun1").is_empty(),
        "OUT-1: no tap before O1..O3 pass"
    );
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// O3, errno #22: a destination of another family (here AF_LINK through the inet protocol) is
/// EAFNOSUPPORT, freed, oerrors.
#[test]
fn output_of_another_family_is_eafnosupport_o3() {
    boot_and_load();
    let fd = open_unit(2);
    configure("tun2");
    let mut dest = sockaddr_in([10, 0, 0, 2]);
    dest[1] = 18; // AF_LINK
    assert_eq!(
        stack::output("tun2", AF_INET, &dest, &v4(b"x")),
        Err(Errno::EAFNOSUPPORT)
    );
    assert_eq!(if_stats("tun2").oerrors, 1);
    assert_eq!(xnu_sim::mbuf::live_mbufs(), 0);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// O4, O5, OUT-1, OUT-3, OUT-5, errno #23: 128 packets queue; the 129th is ENOBUFS, counted as
/// an output error and a queue drop, and BPF saw it all the same.
#[test]
fn the_queue_holds_128_packets_then_enobufs_o4() {
    boot_and_load();
    let fd = open_unit(3);
    configure("tun3");
    for i in 0..128u32 {
        send_ipv4("tun3", &v4(&i.to_be_bytes())).unwrap();
    }
    assert_eq!(send_ipv4("tun3", &v4(b"one too many")), Err(Errno::ENOBUFS));
    let s = if_stats("tun3");
    assert_eq!((s.opackets, s.oerrors), (128, 1));
    assert_eq!(
        s.obytes,
        128 * v4(&[0; 4]).len() as u64,
        "O5: obytes = packet lengths"
    );
    let c = counters(3);
    assert_eq!((c.opackets, c.oerrors, c.queue_drops), (128, 1, 1));
    let taps = netinspect::taps("tun3");
    assert_eq!(taps.len(), 129, "OUT-1: the dropped packet was tapped");
    assert_eq!(taps[128].packet, v4(b"one too many"));
    // 128 packets live (queued), the dropped one freed (OUT-5).
    let live = xnu_sim::mbuf::live_mbufs();
    syscalls::fcntl_setfl(fd, O_NONBLOCK).unwrap();
    for i in 0..128u32 {
        let mut buf = [0u8; 100];
        let n = syscalls::read(fd, &mut buf).unwrap();
        assert_eq!(&buf[..n], &v4(&i.to_be_bytes())[..], "OUT-3: FIFO");
    }
    assert!(live >= 128);
    assert_eq!(
        xnu_sim::mbuf::live_mbufs(),
        0,
        "OUT-5: every mbuf freed once"
    );
    assert_eq!(syscalls::read(fd, &mut [0u8; 10]), Err(Errno::EAGAIN));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// OUT-2, SEL-3, IO-6: after an enqueue the driver wakes sleeping readers, wakes selectors and
/// sends SIGIO to the owner when async I/O is on.
#[test]
fn an_enqueue_wakes_readers_selectors_and_sends_sigio_out2() {
    boot_and_load();
    let fd = open_unit(4);
    configure("tun4");
    let me = proc::spawn_process(0);
    proc::set_current_pid(me);
    let fd_me = open_unit(5);
    configure("tun5");
    syscalls::fcntl_setown(fd_me, me).unwrap();
    ioctl_int(fd_me, FIOASYNC, 1).unwrap();
    proc::set_current_pid(proc::INIT_PID);
    let selector = proc::spawn_thread(proc::INIT_PID, move || {
        syscalls::select(&[fd], &[], Some(Duration::from_secs(20)))
    });
    std::thread::sleep(Duration::from_millis(30));
    assert!(!selector.is_finished(), "nothing to read yet");
    send_ipv4("tun4", &v4(b"wake")).unwrap();
    assert_eq!(selector.join(), Ok((vec![fd], vec![])));
    assert!(proc::signals_received(me).is_empty());
    send_ipv4("tun5", &v4(b"signal")).unwrap();
    assert_eq!(proc::signals_received(me), vec![SIGIO]);
    syscalls::close(fd).unwrap();
    proc::set_current_pid(me);
    syscalls::close(fd_me).unwrap();
    proc::set_current_pid(proc::INIT_PID);
    unload_clean();
}
