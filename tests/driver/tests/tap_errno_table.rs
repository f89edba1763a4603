//! The errno table of docs/tap-contract.md section 15, row by row (#1..#27), in one simulated
//! kernel. Each check names its row; the test ends by asserting every row was checked.

use driver_tests::tap::*;
use driver_tests::*;
use std::collections::BTreeSet;
use tunnel::ioctl::*;
use xnu_sim::abi::*;
use xnu_sim::config::{self, Fault};
use xnu_sim::proc::{self, Handler};
use xnu_sim::syscalls::{self, ioctl_int, O_NONBLOCK, O_RDWR};
use xnu_sim::{devices, link, stack, Errno, KextError};

struct Table(BTreeSet<u32>);

impl Table {
    fn row<T: std::fmt::Debug + PartialEq>(&mut self, n: u32, got: T, want: T) {
        assert_eq!(got, want, "tap errno table row #{n}");
        self.0.insert(n);
    }
}

fn tapinfo(mtu: u16, if_type: u8) -> [u8; 8] {
    let mut info = [0u8; 8];
    info[4..6].copy_from_slice(&mtu.to_ne_bytes());
    info[6] = if_type;
    info
}

#[test]
fn every_row_of_the_tap_errno_table() {
    let mut t = Table(BTreeSet::new());
    boot();
    // #4 first, alone in the kernel: a tap open that reaches d_open while an unload is in
    // progress (caught while it waits for tap0's detached callback) → ENXIO. If the callback
    // wins the race, try again.
    let mut caught = false;
    for _ in 0..50 {
        load();
        syscalls::close(open_tap(0)).unwrap();
        let dev = devices::node("tap0").unwrap().dev;
        let hold = xnu_sim::sleep::hold_sleepers();
        let unload = proc::spawn_thread(proc::KERNEL_PID, xnu_sim::kextunload);
        while !unload.is_finished() && xnu_sim::sleep::sleeping_threads() == 0 {
            std::thread::yield_now();
        }
        if !unload.is_finished() {
            let rc = tunnel::entry::tun_dev_open(1, dev, O_RDWR, S_IFCHR, std::ptr::null_mut());
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

    // Opens.
    load();
    let fd = open_tap(0);
    configure_tap("tap0", Some(fd), TAP_IP);
    let mac = mac_of("tap0");
    t.row(1, syscalls::open("/dev/tap0", O_RDWR), Err(Errno::EBUSY));
    t.row(2, syscalls::open("/dev/tap16", O_RDWR), Err(Errno::ENOENT));
    let tap_major = major(devices::node("tap0").unwrap().dev);
    devices::mknod("taphand", makedev(tap_major, 16), 0o600);
    t.row(3, syscalls::open("/dev/taphand", O_RDWR), Err(Errno::ENXIO));
    let user = proc::spawn_process(501);
    proc::set_current_pid(user);
    t.row(5, syscalls::open("/dev/tap1", O_RDWR), Err(Errno::EACCES));
    proc::set_current_pid(proc::INIT_PID);
    config::fail_nth(Fault::IfnetAllocate, 1);
    t.row(6, syscalls::open("/dev/tap2", O_RDWR), Err(Errno::ENOMEM));

    // Reads.
    let nb = syscalls::open("/dev/tap3", O_RDWR | O_NONBLOCK).unwrap();
    t.row(7, syscalls::read(nb, &mut [0u8; 10]), Err(Errno::EAGAIN));
    const SIGUSR1: i32 = 30;
    proc::sigaction(proc::INIT_PID, SIGUSR1, Some(Handler { restart: false }));
    let reader = proc::spawn_thread(proc::INIT_PID, move || syscalls::read(fd, &mut [0u8; 64]));
    wait_for_sleepers(1);
    proc::kill_thread(reader.tid(), SIGUSR1);
    t.row(8, reader.join(), Err(Errno::EINTR));
    let blocking = open_tap(4);
    let reader = proc::spawn_thread(proc::INIT_PID, move || {
        syscalls::read(blocking, &mut [0u8; 64])
    });
    wait_for_sleepers(1);
    syscalls::revoke("/dev/tap4").unwrap();
    t.row(9, reader.join(), Err(Errno::ENXIO));
    syscalls::close(blocking).unwrap();
    let f = frame(PEER_MAC, mac, 0x88b5, &[10; 100]);
    stack::output_raw("tap0", &f).unwrap();
    config::fail_nth(Fault::CopyOut, 1);
    t.row(10, syscalls::read(fd, &mut [0u8; 200]), Err(Errno::EFAULT));
    syscalls::fcntl_setfl(fd, O_NONBLOCK).unwrap();
    t.row(10, syscalls::read(fd, &mut [0u8; 200]), Err(Errno::EAGAIN)); // frame lost
    stack::output_raw("tap0", &f).unwrap();
    t.row(11, syscalls::read(fd, &mut [0u8; 50]), Ok(50));
    stack::output_raw("tap0", &f).unwrap();
    stack::set_flags("tap0", 0, IFF_UP).unwrap();
    t.row(12, syscalls::read(fd, &mut [0u8; 200]), Ok(f.len()));
    t.row(12, syscalls::read(fd, &mut [0u8; 200]), Err(Errno::EAGAIN));
    stack::set_flags("tap0", IFF_UP, 0).unwrap();

    // Writes.
    let up = ipv4_frame(mac, &[13; 64]);
    t.row(13, syscalls::write(fd, &[]), Ok(0));
    t.row(14, syscalls::write(fd, &vec![0u8; 65536]), Err(Errno::EIO));
    t.row(15, syscalls::write(fd, &up[..13]), Err(Errno::EINVAL));
    t.row(15, syscalls::write(fd, &up[..1]), Err(Errno::EINVAL));
    config::fail_nth(Fault::MbufAlloc, 1);
    t.row(16, syscalls::write(fd, &up), Err(Errno::ENOBUFS));
    config::fail_nth(Fault::CopyIn, 1);
    t.row(17, syscalls::write(fd, &up), Err(Errno::EFAULT));
    t.row(18, syscalls::write(fd, &up[..14]), Ok(14));
    let short_8023 = frame(mac, PEER_MAC, 64, &[0xaa; 7]);
    t.row(18, syscalls::write(fd, &short_8023), Ok(21));
    stack::set_flags("tap0", 0, IFF_UP).unwrap();
    t.row(19, syscalls::write(fd, &up), Ok(up.len()));

    // Output.
    t.row(19, stack::output_raw("tap0", &f), Err(Errno::EHOSTDOWN));
    stack::set_flags("tap0", IFF_UP, 0).unwrap();
    t.row(20, stack::output_raw("tap0", &f[..13]), Err(Errno::EINVAL));
    for _ in 0..128 {
        stack::output_raw("tap0", &f).unwrap();
    }
    t.row(21, stack::output_raw("tap0", &f), Err(Errno::ENOBUFS));

    // Device ioctls.
    let other = open_tap(5);
    let mut info = tapinfo(1500, IFT_OTHER as u8);
    t.row(
        22,
        syscalls::ioctl(other, TAPSIFINFO, &mut info),
        Err(Errno::EPROTOTYPE),
    );
    let mut info = tapinfo(65518, IFT_ETHER as u8);
    t.row(
        22,
        syscalls::ioctl(other, TAPSIFINFO, &mut info),
        Err(Errno::EINVAL),
    );
    for cmd in [
        TUNSIFHEAD,
        0x8004_745b,
        0x2004_5600,
        0x2000_5601,
        0x8004_74fe,
    ] {
        t.row(
            23,
            syscalls::ioctl(other, cmd, &mut [1u8; 4]),
            Err(Errno::ENOTTY),
        );
    }
    let stranger = proc::spawn_process(0);
    t.row(
        24,
        ioctl_int(other, TIOCSPGRP, stranger),
        Err(Errno::EINVAL),
    );
    t.row(24, ioctl_int(other, TIOCSPGRP, -99_999), Err(Errno::ESRCH));
    t.row(24, syscalls::fcntl_setown(other, 99_999), Err(Errno::ESRCH));

    // Interface ioctls.
    t.row(25, stack::set_mtu("tap5", 71), Err(Errno::EINVAL));
    t.row(25, stack::set_mtu("tap5", 65518), Err(Errno::EINVAL));
    let mut alt = [0u8; 32];
    alt[16..20].copy_from_slice(&65518i32.to_ne_bytes());
    t.row(
        25,
        stack::ioctl("tap5", SIOCSIFALTMTU, &mut alt),
        Err(Errno::EINVAL),
    );
    t.row(
        25,
        link::set_lladdr("tap5", &[0x01, 0, 0x5e, 0, 0, 1]),
        Err(Errno::EINVAL),
    );
    t.row(25, link::set_lladdr("tap5", &[0; 6]), Err(Errno::EINVAL));
    t.row(
        26,
        stack::ioctl("tap5", 0xc020_6911, &mut [0u8; 32]),
        Err(Errno::EOPNOTSUPP),
    );

    // #27: unload while a tap unit is open, then while only a tun unit is.
    let nodes = devices::node_names();
    t.row(27, xnu_sim::kextunload(), Err(KextError::Busy));
    t.row(27, devices::node_names(), nodes.clone());
    syscalls::close(other).unwrap();
    syscalls::close(nb).unwrap();
    syscalls::close(fd).unwrap();
    let tun = open_unit(0);
    t.row(27, xnu_sim::kextunload(), Err(KextError::Busy));
    t.row(27, devices::node_names(), nodes);
    syscalls::close(tun).unwrap();
    // #19 also for a closed unit.
    stack::set_flags("tap0", IFF_UP, 0).unwrap();
    t.row(19, stack::output_raw("tap0", &f), Err(Errno::EHOSTDOWN));
    unload_clean();

    assert_eq!(
        t.0,
        (1..=27).collect::<BTreeSet<u32>>(),
        "every row checked"
    );
}
