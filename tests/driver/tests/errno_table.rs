//! The consolidated errno table of docs/tun-contract.md section 13, row by row (#1..#35), in one
//! simulated kernel. Each check names its row; the test ends by asserting every row was
//! checked.

use driver_tests::*;
use std::collections::BTreeSet;
use tunnel::ioctl::*;
use xnu_sim::abi::*;
use xnu_sim::config::{self, Fault};
use xnu_sim::proc::{self, Handler};
use xnu_sim::syscalls::{self, ioctl_int, O_NONBLOCK, O_RDWR};
use xnu_sim::{devices, stack, Errno, KextError};

struct Table(BTreeSet<u32>);

impl Table {
    fn row<T: std::fmt::Debug + PartialEq>(&mut self, n: u32, got: T, want: T) {
        assert_eq!(got, want, "errno table row #{n}");
        self.0.insert(n);
    }
}

fn v4(payload: &[u8]) -> Vec<u8> {
    ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], payload)
}

#[test]
fn every_row_of_the_errno_table() {
    let mut t = Table(BTreeSet::new());
    boot();
    // #4 first, while nothing else is loaded: an open that reaches d_open while an unload is
    // in progress (it passed devfs before the nodes went) → ENXIO. The unload is caught while
    // it waits for the detached callback; if the callback wins the race, try again.
    let mut caught = false;
    for _ in 0..50 {
        load();
        let fd = open_unit(0);
        syscalls::close(fd).unwrap();
        let dev = devices::node("tun0").unwrap().dev;
        let hold = xnu_sim::sleep::hold_sleepers();
        let unload = proc::spawn_thread(proc::KERNEL_PID, xnu_sim::kextunload);
        while !unload.is_finished() && xnu_sim::sleep::sleeping_threads() == 0 {
            std::thread::yield_now();
        }
        if !unload.is_finished() {
            let rc = tunnel::entry::tun_dev_open(0, dev, O_RDWR, S_IFCHR, std::ptr::null_mut());
            t.row(4, Errno(rc), Errno::ENXIO);
            caught = true;
        }
        drop(hold);
        assert_eq!(unload.join(), Ok(()));
        if caught {
            break;
        }
    }
    assert!(caught, "row #4: never caught an unload in progress");
    assert!(xnu_sim::leaks().is_clean());

    load();
    let fd = open_unit(0);
    configure("tun0");
    t.row(1, syscalls::open("/dev/tun0", O_RDWR), Err(Errno::EBUSY));
    t.row(2, syscalls::open("/dev/tun16", O_RDWR), Err(Errno::ENOENT));
    let major0 = major(devices::node("tun0").unwrap().dev);
    devices::mknod("tunhand", makedev(major0, 16), 0o600);
    t.row(3, syscalls::open("/dev/tunhand", O_RDWR), Err(Errno::ENXIO));
    let user = proc::spawn_process(501);
    proc::set_current_pid(user);
    t.row(5, syscalls::open("/dev/tun1", O_RDWR), Err(Errno::EACCES));
    proc::set_current_pid(proc::INIT_PID);
    config::fail_nth(Fault::IfnetAllocate, 1);
    t.row(6, syscalls::open("/dev/tun2", O_RDWR), Err(Errno::ENOMEM));

    // Reads.
    let nb = syscalls::open("/dev/tun3", O_RDWR | O_NONBLOCK).unwrap();
    t.row(7, syscalls::read(nb, &mut [0u8; 10]), Err(Errno::EAGAIN));
    t.row(7, Errno::EAGAIN, Errno::EWOULDBLOCK);
    const SIGUSR1: i32 = 30;
    proc::sigaction(proc::INIT_PID, SIGUSR1, Some(Handler { restart: false }));
    let reader = proc::spawn_thread(proc::INIT_PID, move || syscalls::read(fd, &mut [0u8; 64]));
    wait_for_sleepers(1);
    proc::kill_thread(reader.tid(), SIGUSR1);
    t.row(8, reader.join(), Err(Errno::EINTR));
    let blocking = open_unit(4);
    let reader = proc::spawn_thread(proc::INIT_PID, move || {
        syscalls::read(blocking, &mut [0u8; 64])
    });
    wait_for_sleepers(1);
    syscalls::revoke("/dev/tun4").unwrap();
    t.row(9, reader.join(), Err(Errno::ENXIO));
    syscalls::close(blocking).unwrap();
    send_ipv4("tun0", &v4(b"row 10")).unwrap();
    config::fail_nth(Fault::CopyOut, 1);
    t.row(10, syscalls::read(fd, &mut [0u8; 100]), Err(Errno::EFAULT));
    syscalls::fcntl_setfl(fd, O_NONBLOCK).unwrap();
    t.row(10, syscalls::read(fd, &mut [0u8; 100]), Err(Errno::EAGAIN)); // packet lost
    let p = v4(&[11; 100]);
    send_ipv4("tun0", &p).unwrap();
    t.row(11, syscalls::read(fd, &mut [0u8; 50]), Ok(50));
    send_ipv4("tun0", &p).unwrap();
    stack::set_flags("tun0", 0, IFF_UP).unwrap();
    t.row(12, syscalls::read(fd, &mut [0u8; 200]), Ok(p.len()));
    t.row(12, syscalls::read(fd, &mut [0u8; 200]), Err(Errno::EAGAIN));
    stack::set_flags("tun0", IFF_UP, 0).unwrap();

    // Writes.
    t.row(13, syscalls::write(fd, &[]), Ok(0));
    let mut big = vec![0u8; 65540];
    big[0] = 0x45;
    t.row(14, syscalls::write(fd, &big[..65536]), Err(Errno::EIO));
    ioctl_int(fd, TUNSIFHEAD, 1).unwrap();
    big[..4].copy_from_slice(&[0, 0, 0, 2]);
    big[4] = 0x45;
    t.row(14, syscalls::write(fd, &big[..65540]), Err(Errno::EIO));
    t.row(15, syscalls::write(fd, &[0, 0]), Err(Errno::EINVAL));
    ioctl_int(fd, TUNSIFHEAD, 0).unwrap();
    config::fail_nth(Fault::MbufAlloc, 1);
    t.row(16, syscalls::write(fd, &p), Err(Errno::ENOBUFS));
    config::fail_nth(Fault::CopyIn, 1);
    t.row(17, syscalls::write(fd, &p), Err(Errno::EFAULT));
    t.row(
        18,
        syscalls::write(fd, &[0x20; 40]),
        Err(Errno::EAFNOSUPPORT),
    );
    ioctl_int(fd, TUNSIFHEAD, 1).unwrap();
    t.row(
        18,
        syscalls::write(fd, &[0, 0, 0, 28, 0x60, 0]),
        Err(Errno::EAFNOSUPPORT),
    );
    ioctl_int(fd, TUNSIFHEAD, 0).unwrap();
    stack::set_flags("tun0", 0, IFF_UP).unwrap();
    t.row(19, syscalls::write(fd, &p), Ok(p.len()));

    // Output.
    t.row(21, send_ipv4("tun0", &p), Err(Errno::EHOSTDOWN));
    stack::set_flags("tun0", IFF_UP, 0).unwrap();
    let mut dest = sockaddr_in([10, 0, 0, 2]);
    dest[1] = 18;
    t.row(
        22,
        stack::output("tun0", AF_INET, &dest, &p),
        Err(Errno::EAFNOSUPPORT),
    );
    for _ in 0..128 {
        send_ipv4("tun0", &p).unwrap();
    }
    t.row(23, send_ipv4("tun0", &p), Err(Errno::ENOBUFS));

    // Device ioctls.
    t.row(24, ioctl_int(fd, TUNSIFMODE, 0x10), Err(Errno::EBUSY));
    let other = open_unit(5);
    t.row(25, ioctl_int(other, TUNSIFMODE, 0x12), Err(Errno::EINVAL));
    let mut info = [0u8; 8];
    info[4..6].copy_from_slice(&1500u16.to_ne_bytes());
    info[6] = 0x17; // IFT_PPP
    t.row(
        26,
        syscalls::ioctl(other, TUNSIFINFO, &mut info),
        Err(Errno::EPROTOTYPE),
    );
    info[4..6].copy_from_slice(&71u16.to_ne_bytes());
    info[6] = IFT_OTHER as u8;
    t.row(
        27,
        syscalls::ioctl(other, TUNSIFINFO, &mut info),
        Err(Errno::EINVAL),
    );
    let stranger = proc::spawn_process(0);
    t.row(
        28,
        ioctl_int(other, TIOCSPGRP, stranger),
        Err(Errno::EINVAL),
    );
    t.row(29, ioctl_int(other, TIOCSPGRP, -99_999), Err(Errno::ESRCH));
    t.row(29, syscalls::fcntl_setown(other, 99_999), Err(Errno::ESRCH));
    t.row(
        30,
        syscalls::ioctl(other, 0x8004_745b, &mut [0u8; 4]),
        Err(Errno::ENOTTY),
    );
    t.row(
        31,
        syscalls::ioctl_bad_pointer(other, TUNGIFINFO),
        Err(Errno::EFAULT),
    );

    // Interface ioctls.
    t.row(32, stack::set_mtu("tun5", 71), Err(Errno::EINVAL));
    t.row(32, stack::set_mtu("tun5", 65536), Err(Errno::EINVAL));
    t.row(
        33,
        stack::ioctl("tun5", 0xc020_6911, &mut [0u8; 32]),
        Err(Errno::EOPNOTSUPP),
    );

    // Unload while open (#34), and #20 once the unit is closed.
    t.row(34, xnu_sim::kextunload(), Err(KextError::Busy));
    syscalls::close(other).unwrap();
    syscalls::close(nb).unwrap();
    syscalls::close(fd).unwrap();
    stack::set_flags("tun0", IFF_UP, 0).unwrap();
    t.row(20, send_ipv4("tun0", &p), Err(Errno::EHOSTDOWN));
    unload_clean();

    // #35: a partial failure during load leaves nothing behind.
    config::fail_nth(Fault::DevfsMakeNode, 5);
    match xnu_sim::kextload(kmod()) {
        Err(KextError::StartFailed(leaks)) => t.row(35, leaks, xnu_sim::LeakReport::default()),
        r => panic!("row #35: {r:?}"),
    }
    // Only the hand-made node of row #3 is left.
    t.row(35, devices::node_names(), vec!["tunhand".to_string()]);
    config::clear_faults();
    load();
    unload_clean();

    assert_eq!(
        t.0,
        (1..=35).collect::<BTreeSet<u32>>(),
        "every row checked"
    );
}
