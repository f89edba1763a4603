//! The device ioctls of /dev/tapN (docs/tap-contract.md section 9: the TI table and TI-1),
//! select and SIGIO (TS-1), and the interface ioctls section 10 leaves to "any other".

use driver_tests::tap::*;
use driver_tests::*;
use std::time::Duration;
use tunnel::ioctl::*;
use xnu_sim::abi::*;
use xnu_sim::syscalls::{self, ioctl_int, O_ASYNC, O_NONBLOCK};
use xnu_sim::{link, netinspect, proc, stack, Errno};

const ZERO: Option<Duration> = Some(Duration::ZERO);

fn tapinfo(baudrate: i32, mtu: u16, if_type: u8) -> [u8; 8] {
    let mut info = [0u8; 8];
    info[..4].copy_from_slice(&baudrate.to_ne_bytes());
    info[4..6].copy_from_slice(&mtu.to_ne_bytes());
    info[6] = if_type;
    info
}

/// TI table: `TAPSDEBUG`/`TAPGDEBUG` are the driver-wide level tun's `TUNSDEBUG` sets too.
#[test]
fn the_debug_level_is_shared_with_tun_ti() {
    boot_and_load();
    let tap = open_tap(0);
    let tun = open_unit(0);
    assert_eq!(ioctl_int(tap, TAPSDEBUG, 3), Ok(3));
    assert_eq!(ioctl_int(tun, TUNGDEBUG, 0), Ok(3));
    assert_eq!(ioctl_int(tun, TUNSDEBUG, 0), Ok(0));
    assert_eq!(ioctl_int(tap, TAPGDEBUG, -1), Ok(0));
    syscalls::close(tun).unwrap();
    syscalls::close(tap).unwrap();
    unload_clean();
}

/// TI table, errno #22: `TAPSIFINFO` checks the type first (`EPROTOTYPE` unless `IFT_ETHER`),
/// then the MTU (72..65517, `EINVAL`), and on error changes nothing; otherwise it sets MTU and
/// baudrate, which `TAPGIFINFO` reports with type 6 and a zero pad; up or down.
#[test]
fn tapsifinfo_and_tapgifinfo_ti() {
    boot_and_load();
    let fd = open_tap(1);
    let get = || {
        let mut out = [0xeeu8; 8];
        syscalls::ioctl(fd, TAPGIFINFO, &mut out).unwrap();
        out
    };
    assert_eq!(get(), tapinfo(0, 1500, IFT_ETHER as u8));
    for (info, want) in [
        (tapinfo(5, 71, IFT_OTHER as u8), Errno::EPROTOTYPE),
        (tapinfo(5, 9000, 0x17), Errno::EPROTOTYPE),
        (tapinfo(5, 71, IFT_ETHER as u8), Errno::EINVAL),
        (tapinfo(5, 65518, IFT_ETHER as u8), Errno::EINVAL),
        (tapinfo(5, 65535, IFT_ETHER as u8), Errno::EINVAL),
    ] {
        assert_eq!(
            syscalls::ioctl(fd, TAPSIFINFO, &mut info.clone()),
            Err(want)
        );
        assert_eq!(get(), tapinfo(0, 1500, IFT_ETHER as u8), "nothing changed");
    }
    for up in [false, true] {
        if up {
            stack::set_flags("tap1", IFF_UP, 0).unwrap();
        }
        let mtu = if up { 65517 } else { 72 };
        let mut info = tapinfo(1_000_000_000, mtu, IFT_ETHER as u8);
        assert_eq!(syscalls::ioctl(fd, TAPSIFINFO, &mut info), Ok(()));
        assert_eq!(get(), tapinfo(1_000_000_000, mtu, IFT_ETHER as u8));
        let i = netinspect::interface("tap1").unwrap();
        assert_eq!((i.mtu, i.baudrate), (u32::from(mtu), 1_000_000_000));
    }
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TI table: `TAPGIFNAME` gives "tapN", NUL-padded, the rest of the `ifreq` zeroed.
#[test]
fn tapgifname_gives_the_interface_name_ti() {
    boot_and_load();
    let fd = open_tap(11);
    let mut req = [0xeeu8; 32];
    assert_eq!(syscalls::ioctl(fd, TAPGIFNAME, &mut req), Ok(()));
    let mut want = [0u8; 32];
    want[..5].copy_from_slice(b"tap11");
    assert_eq!(req, want);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TI-1: device `SIOCGIFADDR` returns the MAC register in bytes 0..6 and bytes 6..32 as
/// copied in; device `SIOCSIFADDR` sets the register without touching the interface's MAC;
/// `SIOCSIFLLADDR` does not change the register of an open unit; the next open sets it to
/// the (new) MAC. Up or down.
#[test]
fn device_siocgifaddr_and_siocsifaddr_are_the_mac_register_ti1() {
    boot_and_load();
    let fd = open_tap(2);
    let mac = mac_of("tap2");
    let mut req = [0u8; 32];
    for (k, b) in req.iter_mut().enumerate() {
        *b = 0x40 + k as u8;
    }
    let sent = req;
    assert_eq!(syscalls::ioctl(fd, SIOCGIFADDR, &mut req), Ok(()));
    assert_eq!(&req[..6], &mac);
    assert_eq!(&req[6..], &sent[6..], "bytes 6..32 as copied in");
    let reg = [0x02, 0x72, 0x65, 0x67, 0x00, 0x02];
    let mut set = [0u8; 32];
    set[..6].copy_from_slice(&reg);
    assert_eq!(syscalls::ioctl(fd, SIOCSIFADDR, &mut set), Ok(()));
    assert_eq!(mac_register(fd), reg);
    assert_eq!(mac_of("tap2"), mac, "the interface MAC is not changed");
    stack::set_flags("tap2", IFF_UP, 0).unwrap();
    let new = [0x02, 0x6e, 0x65, 0x77, 0x00, 0x02];
    link::set_lladdr("tap2", &new).unwrap();
    assert_eq!(mac_register(fd), reg, "changed only by device SIOCSIFADDR");
    syscalls::close(fd).unwrap();
    let fd = open_tap(2);
    assert_eq!(mac_register(fd), new, "set to the MAC at open");
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TI table (as tun §7, IO-7): `FIONBIO` and `FIOASYNC` take any value both ways (fcntl works),
/// `FIONREAD` is the length of the frame at the head of the queue (0 when empty), the owner
/// commands work.
#[test]
fn the_shared_ioctls_work_on_tap_ti() {
    boot_and_load();
    let fd = open_tap(3);
    assert_eq!(syscalls::fcntl_setfl(fd, O_NONBLOCK | O_ASYNC), Ok(()));
    assert_eq!(syscalls::fcntl_setfl(fd, 0), Ok(()));
    for v in [0, 1, 4, 0x40, -1] {
        assert_eq!(ioctl_int(fd, FIONBIO, v), Ok(v));
        assert_eq!(ioctl_int(fd, FIOASYNC, v), Ok(v));
    }
    assert_eq!(ioctl_int(fd, FIONREAD, -1), Ok(0));
    stack::set_flags("tap3", IFF_UP, 0).unwrap();
    let mac = mac_of("tap3");
    for len in [60usize, 1514] {
        stack::output_raw("tap3", &frame(PEER_MAC, mac, 0x88b5, &vec![0; len - 14])).unwrap();
    }
    assert_eq!(ioctl_int(fd, FIONREAD, 0), Ok(60));
    read_frame(fd);
    assert_eq!(ioctl_int(fd, FIONREAD, 0), Ok(1514));
    let pgrp = proc::pgid_of(proc::INIT_PID).unwrap();
    assert_eq!(ioctl_int(fd, TIOCSPGRP, pgrp), Ok(pgrp));
    assert_eq!(ioctl_int(fd, TIOCGPGRP, 0), Ok(pgrp));
    assert_eq!(syscalls::fcntl_setown(fd, proc::INIT_PID), Ok(()));
    assert_eq!(syscalls::fcntl_getown(fd), Ok(-pgrp));
    assert_eq!(ioctl_int(fd, TIOCSPGRP, 0), Ok(0));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TI table, errno #23: tun-only commands (`TUNSLMODE`, `TUNSIFMODE`, `TUNSIFPID`,
/// `TUNSIFHEAD`, `TUNGIFHEAD`), virtio (`TAPSVNETHDR`, `TAPGVNETHDR`), VMware
/// (`VMIO_SIOCSIFFLAGS` and every `_IO('V', n)`) and unknown commands are `ENOTTY` and change
/// nothing: frames still read and write bare.
#[test]
fn tun_only_virtio_vmware_and_unknown_ioctls_are_enotty_ti() {
    boot_and_load();
    let fd = open_tap(4);
    stack::set_flags("tap4", IFF_UP, 0).unwrap();
    let mut cmds = vec![
        TUNSLMODE,
        TUNSIFMODE,
        TUNSIFPID,
        TUNSIFHEAD,
        TUNGIFHEAD,
        0x8004_745b,
        0x4004_745e,
        0x2004_5600,
        0xc020_6911,
        0x8004_7400,
        0x4004_74ff,
    ];
    cmds.extend((0..=255u32).map(|n| 0x2000_5600 | n));
    for cmd in cmds {
        let len = syscalls::ioctl_arg_len(cmd).max(4);
        let mut arg = vec![1u8; len];
        assert_eq!(
            syscalls::ioctl(fd, cmd, &mut arg),
            Err(Errno::ENOTTY),
            "{cmd:#010x}"
        );
    }
    let mac = mac_of("tap4");
    let f = frame(PEER_MAC, mac, 0x88b5, b"bare");
    stack::output_raw("tap4", &f).unwrap();
    assert_eq!(read_frame(fd), f, "no AF header mode, no link-layer mode");
    assert_eq!(
        if_status("tap4"),
        format!("\topen (pid {})\n", proc::INIT_PID)
    );
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// Section 10 "any other", errno #26: interface ioctls tap does not name are `EOPNOTSUPP`
/// (argument or NULL); `SIOCGIFSTATUS` works as for tun.
#[test]
fn unknown_interface_ioctls_are_eopnotsupp_ti() {
    boot_and_load();
    let fd = open_tap(5);
    for cmd in [
        0xc020_6911u32,
        0x8020_6913,
        0xc020_6921,
        0xc020_699e,
        0x2000_0000,
    ] {
        assert_eq!(
            stack::ioctl("tap5", cmd, &mut [0u8; 64]),
            Err(Errno::EOPNOTSUPP)
        );
        assert_eq!(stack::ioctl("tap5", cmd, &mut []), Err(Errno::EOPNOTSUPP));
    }
    assert_eq!(
        if_status("tap5"),
        format!("\topen (pid {})\n", proc::INIT_PID)
    );
    syscalls::close(fd).unwrap();
    assert_eq!(if_status("tap5"), "\tclosed\n");
    unload_clean();
}

/// TS-1 (SEL-1, SEL-2, SEL-4): zero-timeout select: writable always (down too), readable iff a
/// frame is queued, and then the next read returns it.
#[test]
fn select_is_readable_iff_a_frame_is_queued_ts1() {
    boot_and_load();
    let fd = open_tap(6);
    assert_eq!(syscalls::select(&[fd], &[fd], ZERO), Ok((vec![], vec![fd])));
    stack::set_flags("tap6", IFF_UP, 0).unwrap();
    let f = frame(PEER_MAC, mac_of("tap6"), 0x88b5, b"s");
    stack::output_raw("tap6", &f).unwrap();
    assert_eq!(
        syscalls::select(&[fd], &[fd], ZERO),
        Ok((vec![fd], vec![fd]))
    );
    assert_eq!(read_frame(fd), f);
    assert_eq!(syscalls::select(&[fd], &[], ZERO), Ok((vec![], vec![])));
    stack::set_flags("tap6", 0, IFF_UP).unwrap();
    assert_eq!(syscalls::select(&[], &[fd], ZERO), Ok((vec![], vec![fd])));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TS-1 (SEL-3): a selector parked in select (its record seen by the kernel, not guessed by a
/// clock) is woken by a frame queued from another thread, every round.
#[test]
fn a_parked_selector_is_woken_by_each_enqueue_ts1() {
    boot_and_load();
    let fd = open_tap(7);
    stack::set_flags("tap7", IFF_UP, 0).unwrap();
    let mac = mac_of("tap7");
    for round in 0..30u8 {
        let selector = proc::spawn_thread(proc::INIT_PID, move || {
            syscalls::select(&[fd], &[], Some(Duration::from_secs(30)))
        });
        if round % 2 == 0 {
            wait_for_select_record();
        }
        let f = frame(PEER_MAC, mac, 0x88b5, &[round; 20]);
        let sender = proc::spawn_thread(proc::INIT_PID, move || stack::output_raw("tap7", &f));
        assert_eq!(sender.join(), Ok(()));
        assert_eq!(selector.join(), Ok((vec![fd], vec![])), "round {round}");
        assert_eq!(read_frame(fd)[14], round);
    }
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TS-1 (IO-6, IO-7): with an owner and `O_ASYNC`, every enqueue sends `SIGIO`; without
/// async none; close turns async off.
#[test]
fn sigio_on_every_enqueue_ts1() {
    boot_and_load();
    let me = proc::spawn_process(0);
    proc::set_current_pid(me);
    let fd = open_tap(8);
    stack::set_flags("tap8", IFF_UP, 0).unwrap();
    let f = frame(PEER_MAC, mac_of("tap8"), 0x88b5, b"sigio");
    syscalls::fcntl_setown(fd, me).unwrap();
    stack::output_raw("tap8", &f).unwrap();
    assert!(proc::signals_received(me).is_empty(), "async off");
    syscalls::fcntl_setfl(fd, O_ASYNC).unwrap();
    for k in 1..=3 {
        stack::output_raw("tap8", &f).unwrap();
        assert_eq!(
            proc::signals_received(me),
            vec![SIGIO; k],
            "one per enqueue"
        );
    }
    syscalls::close(fd).unwrap();
    let fd = open_tap(8);
    stack::set_flags("tap8", IFF_UP, 0).unwrap();
    stack::output_raw("tap8", &f).unwrap();
    assert_eq!(
        proc::signals_received(me).len(),
        3,
        "close turned async off"
    );
    syscalls::close(fd).unwrap();
    proc::set_current_pid(proc::INIT_PID);
    unload_clean();
}
