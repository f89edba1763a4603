//! The minimal data path through the real driver: write → ifnet_input, output → read.

use driver_tests::*;
use std::time::Duration;
use xnu_sim::abi::*;
use xnu_sim::syscalls::{self, O_NONBLOCK};
use xnu_sim::{netinspect, proc, stack, Errno};

/// W9, WR-1: a raw IPv4 packet written to /dev/tun0 reaches the stack as PF_INET, counted.
#[test]
fn raw_ipv4_write_reaches_the_stack_as_inet() {
    boot_and_load();
    let fd = open_unit(0);
    configure("tun0");
    let packet = ipv4_udp([10, 0, 0, 2], [10, 0, 0, 1], b"hello, stack");
    assert_eq!(syscalls::write(fd, &packet), Ok(packet.len()));
    assert_eq!(
        netinspect::received("tun0"),
        vec![(AF_INET, packet.clone())]
    );
    let stats = netinspect::interface("tun0").unwrap().stats;
    assert_eq!((stats.ipackets, stats.ibytes), (1, packet.len() as u64));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// O5, RD-1: a packet the stack sends is read back from /dev/tun0 byte for byte.
#[test]
fn stack_output_is_read_back_byte_for_byte() {
    boot_and_load();
    let fd = open_unit(0);
    configure("tun0");
    let packet = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], &[0x5a; 1400]);
    stack::output("tun0", AF_INET, &sockaddr_in([10, 0, 0, 2]), &packet).unwrap();
    let mut buf = vec![0u8; 4096];
    let n = syscalls::read(fd, &mut buf).unwrap();
    assert_eq!(&buf[..n], &packet[..]);
    let stats = netinspect::interface("tun0").unwrap().stats;
    assert_eq!((stats.opackets, stats.obytes), (1, packet.len() as u64));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// RD-4, errno #7: non-blocking read of an empty queue is EAGAIN.
#[test]
fn nonblocking_read_of_an_empty_queue_is_eagain() {
    boot_and_load();
    let fd = open_unit(1);
    syscalls::fcntl_setfl(fd, O_NONBLOCK).unwrap();
    assert_eq!(syscalls::read(fd, &mut [0u8; 1500]), Err(Errno::EAGAIN));
    syscalls::close(fd).unwrap();
    let fd = syscalls::open("/dev/tun1", syscalls::O_RDWR | O_NONBLOCK).unwrap();
    assert_eq!(
        syscalls::read(fd, &mut [0u8; 1500]),
        Err(Errno::EAGAIN),
        "IO_NDELAY from the open flags"
    );
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// RD-5, RD-6: a blocking read sleeps until a packet is enqueued from another thread.
#[test]
fn blocking_read_wakes_on_enqueue() {
    boot_and_load();
    let fd = open_unit(2);
    configure("tun2");
    let packet = ipv6_udp([0xfd; 16], [0xfe; 16], b"wake up");
    let reader = proc::spawn_thread(proc::INIT_PID, move || {
        let mut buf = vec![0u8; 2048];
        let n = syscalls::read(fd, &mut buf).expect("blocking read");
        buf.truncate(n);
        buf
    });
    // The reader is asleep in the driver before the packet arrives.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while xnu_sim::sleep::sleeping_threads() == 0 {
        assert!(std::time::Instant::now() < deadline, "reader never slept");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(!reader.is_finished());
    stack::output("tun2", AF_INET6, &sockaddr_in6([0xfe; 16]), &packet).unwrap();
    assert_eq!(reader.join(), packet);
    syscalls::close(fd).unwrap();
    unload_clean();
}
