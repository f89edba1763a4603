//! The character-device ioctls (docs/tun-contract.md section 7) with their numbers, argument
//! layouts and error cases, and the owner/SIGIO rules IO-1..IO-7.

use driver_tests::*;
use tunnel::ioctl::*;
use xnu_sim::abi::*;
use xnu_sim::proc;
use xnu_sim::syscalls::{self, ioctl_int, O_ASYNC, O_NONBLOCK};
use xnu_sim::{netinspect, Errno};

fn tuninfo(baudrate: i32, mtu: u16, if_type: u8) -> [u8; 8] {
    let mut t = [0u8; 8];
    t[..4].copy_from_slice(&baudrate.to_ne_bytes());
    t[4..6].copy_from_slice(&mtu.to_ne_bytes());
    t[6] = if_type;
    t
}

/// TUNSDEBUG/TUNGDEBUG: a driver-wide level, default 0, shared by every unit.
#[test]
fn debug_level_is_driver_wide() {
    boot_and_load();
    let a = open_unit(0);
    let b = open_unit(1);
    assert_eq!(ioctl_int(a, TUNGDEBUG, -1), Ok(0));
    assert_eq!(ioctl_int(a, TUNSDEBUG, 3), Ok(3));
    assert_eq!(
        ioctl_int(b, TUNGDEBUG, 0),
        Ok(3),
        "seen through another unit"
    );
    syscalls::close(a).unwrap();
    assert_eq!(ioctl_int(b, TUNGDEBUG, 0), Ok(3), "close does not reset it");
    syscalls::close(b).unwrap();
    unload_clean();
}

/// TUNSIFINFO/TUNGIFINFO (errno #26, #27): an 8-byte tuninfo; the type is checked first
/// (EPROTOTYPE), then mtu < 72 (EINVAL); on error nothing changes. Works while down or up.
#[test]
fn tuninfo_sets_mtu_and_baudrate_with_its_error_order() {
    boot_and_load();
    let fd = open_unit(2);
    let mut info = [0xffu8; 8];
    syscalls::ioctl(fd, TUNGIFINFO, &mut info).unwrap();
    assert_eq!(
        info,
        tuninfo(0, 1500, IFT_OTHER as u8),
        "baudrate 0, MTU 1500, IFT_OTHER, pad 0"
    );
    let mut set = tuninfo(64000, 1400, IFT_OTHER as u8);
    syscalls::ioctl(fd, TUNSIFINFO, &mut set).unwrap();
    let i = netinspect::interface("tun2").unwrap();
    assert_eq!((i.mtu, i.baudrate), (1400, 64000));
    syscalls::ioctl(fd, TUNGIFINFO, &mut info).unwrap();
    assert_eq!(info, tuninfo(64000, 1400, IFT_OTHER as u8));
    // Type first: a bad type and a bad MTU together → EPROTOTYPE.
    assert_eq!(
        syscalls::ioctl(fd, TUNSIFINFO, &mut tuninfo(1, 10, 0x17)),
        Err(Errno::EPROTOTYPE)
    );
    assert_eq!(
        syscalls::ioctl(fd, TUNSIFINFO, &mut tuninfo(1, 71, IFT_OTHER as u8)),
        Err(Errno::EINVAL)
    );
    let i = netinspect::interface("tun2").unwrap();
    assert_eq!(
        (i.mtu, i.baudrate),
        (1400, 64000),
        "nothing changed on error"
    );
    configure("tun2");
    syscalls::ioctl(fd, TUNSIFINFO, &mut tuninfo(0, 72, IFT_OTHER as u8)).unwrap();
    syscalls::ioctl(fd, TUNSIFINFO, &mut tuninfo(0, 65535, IFT_OTHER as u8)).unwrap();
    assert_eq!(
        netinspect::interface("tun2").unwrap().mtu,
        65535,
        "works while up"
    );
    syscalls::close(fd).unwrap();
    let i = netinspect::interface("tun2").unwrap();
    assert_eq!(
        (i.mtu, i.baudrate),
        (1500, 0),
        "close restores MTU and baudrate"
    );
    unload_clean();
}

/// TUNGIFNAME: a 32-byte ifreq with "tunN" NUL-padded to 16 bytes and the rest zeroed.
#[test]
fn tungifname_returns_the_interface_name() {
    boot_and_load();
    for n in [0, 9, 15] {
        let fd = open_unit(n);
        let mut req = [0xeeu8; 32];
        syscalls::ioctl(fd, TUNGIFNAME, &mut req).unwrap();
        let mut expected = [0u8; 32];
        let name = format!("tun{n}");
        expected[..name.len()].copy_from_slice(name.as_bytes());
        assert_eq!(req, expected);
        syscalls::close(fd).unwrap();
    }
    unload_clean();
}

/// TUNSIFMODE (errno #24, #25): only while down (EBUSY checked first); accepted values 0x10,
/// 0x8010, 0x2, 0x8002 replace BROADCAST|POINTOPOINT|MULTICAST; anything else EINVAL.
#[test]
fn tunsifmode_sets_the_interface_mode_only_while_down() {
    boot_and_load();
    let fd = open_unit(3);
    let flags = || netinspect::interface("tun3").unwrap().flags;
    for mode in [0x2u16, 0x8002, 0x10, 0x8010] {
        assert_eq!(
            ioctl_int(fd, TUNSIFMODE, i32::from(mode)),
            Ok(i32::from(mode))
        );
        assert_eq!(
            flags() & (IFF_BROADCAST | IFF_POINTOPOINT | IFF_MULTICAST),
            mode
        );
    }
    for bad in [0, 0x12, 0x8012, 0x1, 0x8000, -1, 0x10010] {
        assert_eq!(
            ioctl_int(fd, TUNSIFMODE, bad),
            Err(Errno::EINVAL),
            "{bad:#x}"
        );
    }
    assert_eq!(
        flags(),
        IFF_POINTOPOINT | IFF_MULTICAST,
        "unchanged by EINVAL"
    );
    configure("tun3");
    assert_eq!(ioctl_int(fd, TUNSIFMODE, 0x2), Err(Errno::EBUSY));
    assert_eq!(
        ioctl_int(fd, TUNSIFMODE, 0x12),
        Err(Errno::EBUSY),
        "EBUSY before EINVAL"
    );
    assert_eq!(flags() & IFF_BROADCAST, 0);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TUNSIFPID, U-6, U-3: the status pid is the opener's until TUNSIFPID, issued by a forked
/// child sharing the one open, makes it the child's. Close clears it.
#[test]
fn tunsifpid_makes_the_callers_pid_the_status_pid() {
    boot_and_load();
    let fd = open_unit(5);
    assert_eq!(
        if_status("tun5"),
        format!("\topen (pid {})\n", proc::INIT_PID)
    );
    let child = syscalls::fork();
    proc::set_current_pid(child);
    syscalls::ioctl(fd, TUNSIFPID, &mut []).unwrap();
    assert_eq!(if_status("tun5"), format!("\topen (pid {child})\n"));
    syscalls::close(fd).unwrap(); // the parent still holds the open
    proc::set_current_pid(proc::INIT_PID);
    assert_eq!(if_status("tun5"), format!("\topen (pid {child})\n"));
    syscalls::close(fd).unwrap();
    assert_eq!(if_status("tun5"), "\tclosed\n");
    unload_clean();
}

/// FIONBIO and FIOASYNC accept any value (fcntl passes 0x4 and 0x40), both ways (IO-7).
#[test]
fn fionbio_and_fioasync_accept_any_value_io7() {
    boot_and_load();
    let fd = open_unit(6);
    for v in [0x4i32, 1, -1, 0] {
        assert!(syscalls::ioctl_direct(fd, FIONBIO, &mut v.to_ne_bytes()).is_ok());
        assert!(syscalls::ioctl_direct(fd, FIOASYNC, &mut v.to_ne_bytes()).is_ok());
    }
    // IO-7: fcntl(F_SETFL) issues FIONBIO then FIOASYNC; both succeed with 0 and non-zero.
    for f in [O_NONBLOCK, O_ASYNC, O_NONBLOCK | O_ASYNC, 0] {
        syscalls::fcntl_setfl(fd, f).unwrap();
        assert_eq!(
            syscalls::fcntl_getfl(fd).unwrap() & (O_NONBLOCK | O_ASYNC),
            f
        );
    }
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// FIONREAD: the framed length of the head packet (+4 in AF mode, + sa_len in LMODE), 0 when
/// empty.
#[test]
fn fionread_is_the_framed_length_of_the_head_packet() {
    boot_and_load();
    let fd = open_unit(7);
    configure("tun7");
    assert_eq!(ioctl_int(fd, FIONREAD, -1), Ok(0));
    let v6 = ipv6_udp(V6_LOCAL, V6_PEER, &[1; 33]);
    send_ipv6("tun7", &v6).unwrap();
    send_ipv4("tun7", &ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], &[2; 99])).unwrap();
    assert_eq!(ioctl_int(fd, FIONREAD, 0), Ok(v6.len() as i32));
    ioctl_int(fd, TUNSIFHEAD, 1).unwrap();
    assert_eq!(ioctl_int(fd, FIONREAD, 0), Ok(v6.len() as i32 + 4));
    ioctl_int(fd, TUNSLMODE, 1).unwrap();
    assert_eq!(ioctl_int(fd, FIONREAD, 0), Ok(v6.len() as i32 + 28));
    let mut buf = [0u8; 300];
    syscalls::read(fd, &mut buf).unwrap();
    assert_eq!(ioctl_int(fd, FIONREAD, 0), Ok(20 + 8 + 99 + 16));
    syscalls::read(fd, &mut buf).unwrap();
    assert_eq!(ioctl_int(fd, FIONREAD, 0), Ok(0));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// Unknown commands → ENOTTY (errno #30), including TAPSVNETHDR, which differs from TUNSIFINFO
/// only in its size field; a bad argument pointer → EFAULT before the driver (errno #31).
#[test]
fn unknown_ioctls_are_enotty_and_bad_pointers_efault() {
    boot_and_load();
    let fd = open_unit(8);
    assert_eq!(
        syscalls::ioctl(fd, 0x8004_745b, &mut 0i32.to_ne_bytes()),
        Err(Errno::ENOTTY),
        "TAPSVNETHDR"
    );
    assert_eq!(
        syscalls::ioctl(fd, 0x2000_7400, &mut []),
        Err(Errno::ENOTTY)
    );
    assert_eq!(
        syscalls::ioctl(fd, 0xc020_6921, &mut [0u8; 32]),
        Err(Errno::ENOTTY)
    );
    assert_eq!(
        syscalls::ioctl_bad_pointer(fd, TUNGIFINFO),
        Err(Errno::EFAULT)
    );
    assert_eq!(
        syscalls::ioctl_bad_pointer(fd, TUNSIFHEAD),
        Err(Errno::EFAULT)
    );
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// IO-1, IO-2, IO-4, errno #28: TIOCSPGRP(g) works for the caller's own group (then TIOCGPGRP
/// → g, F_GETOWN → -g); a foreign group is EINVAL with the owner unchanged; 0 clears.
#[test]
fn tiocspgrp_accepts_only_the_callers_group_io2() {
    boot_and_load();
    let fd = open_unit(9);
    let me = proc::current_pid();
    let group = proc::pgid_of(me).unwrap();
    assert_eq!(ioctl_int(fd, TIOCGPGRP, 0), Ok(0), "no owner at first");
    assert_eq!(ioctl_int(fd, TIOCSPGRP, group), Ok(group));
    assert_eq!(ioctl_int(fd, TIOCGPGRP, 0), Ok(group));
    let stranger = proc::spawn_process(0);
    assert_eq!(ioctl_int(fd, TIOCSPGRP, stranger), Err(Errno::EINVAL));
    assert_eq!(ioctl_int(fd, TIOCGPGRP, 0), Ok(group), "unchanged");
    // F_SETOWN(getpid()) becomes TIOCSPGRP(own group); F_GETOWN reads -g (IO-4).
    syscalls::fcntl_setown(fd, me).unwrap();
    assert_eq!(syscalls::fcntl_getown(fd), Ok(-group));
    assert_eq!(
        syscalls::fcntl_setown(fd, stranger),
        Err(Errno::EINVAL),
        "F_SETOWN of another process: its group is foreign"
    );
    assert_eq!(
        syscalls::fcntl_setown(fd, 99_999),
        Err(Errno::ESRCH),
        "above the driver"
    );
    assert_eq!(ioctl_int(fd, TIOCSPGRP, 0), Ok(0), "IO-1");
    assert_eq!(ioctl_int(fd, TIOCGPGRP, 0), Ok(0));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// IO-3, IO-4, errno #29: TIOCSPGRP(-pid) names a process (TIOCGPGRP → -pid); a nonexistent
/// one is ESRCH. proc_find references are released.
#[test]
fn tiocspgrp_negative_names_a_process_io3() {
    boot_and_load();
    let fd = open_unit(10);
    let other = proc::spawn_process(0);
    assert_eq!(ioctl_int(fd, TIOCSPGRP, -other), Ok(-other));
    assert_eq!(ioctl_int(fd, TIOCGPGRP, 0), Ok(-other));
    assert_eq!(ioctl_int(fd, TIOCSPGRP, -99_999), Err(Errno::ESRCH));
    assert_eq!(ioctl_int(fd, TIOCGPGRP, 0), Ok(-other), "unchanged");
    assert_eq!(xnu_sim::leaks().proc_refs, 0);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// IO-5: FIOSETOWN/FIOGETOWN reaching the driver unchanged: v > 0 a process (ESRCH if none),
/// v < 0 group -v under IO-2, 0 clears; FIOGETOWN returns pid, -g or 0.
#[test]
fn fiosetown_received_directly_follows_io5() {
    boot_and_load();
    let fd = open_unit(11);
    let other = proc::spawn_process(0);
    let group = proc::pgid_of(proc::current_pid()).unwrap();
    let set = |v: i32| syscalls::ioctl_direct(fd, FIOSETOWN, &mut v.to_ne_bytes());
    let get = || {
        let mut a = [0u8; 4];
        syscalls::ioctl_direct(fd, FIOGETOWN, &mut a).map(|()| i32::from_ne_bytes(a))
    };
    set(other).unwrap();
    assert_eq!(get(), Ok(other));
    assert_eq!(ioctl_int(fd, TIOCGPGRP, 0), Ok(-other));
    assert_eq!(set(99_999), Err(Errno::ESRCH));
    set(-group).unwrap();
    assert_eq!(get(), Ok(-group));
    assert_eq!(set(-other), Err(Errno::EINVAL), "a foreign group");
    set(0).unwrap();
    assert_eq!(get(), Ok(0));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// IO-6, IO-7 (section 7 test): fcntl(F_SETOWN, getpid()) then FIOASYNC(1); a packet sent to the
/// peer delivers SIGIO to the caller. Async off: nothing. A target that exited: nothing, no
/// error. Close clears async and owner.
#[test]
fn sigio_reaches_the_owner_on_enqueue_io6() {
    boot_and_load();
    let me = proc::spawn_process(0);
    proc::set_current_pid(me);
    let fd = open_unit(12);
    configure("tun12");
    let p = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], b"sigio");
    syscalls::fcntl_setown(fd, me).unwrap();
    send_ipv4("tun12", &p).unwrap();
    assert!(proc::signals_received(me).is_empty(), "async is off");
    syscalls::fcntl_setfl(fd, O_ASYNC).unwrap(); // FIONBIO(0), FIOASYNC(0x40)
    send_ipv4("tun12", &p).unwrap();
    assert_eq!(proc::signals_received(me), vec![SIGIO]);
    // A process owner that exits gets nothing; the enqueue still succeeds.
    let gone = proc::spawn_process(0);
    assert_eq!(ioctl_int(fd, TIOCSPGRP, -gone), Ok(-gone));
    proc::exit_process(gone);
    assert_eq!(send_ipv4("tun12", &p), Ok(()));
    syscalls::close(fd).unwrap();
    let fd = open_unit(12);
    assert_eq!(
        ioctl_int(fd, TIOCGPGRP, 0),
        Ok(0),
        "close cleared the owner"
    );
    configure("tun12");
    send_ipv4("tun12", &p).unwrap();
    assert_eq!(
        proc::signals_received(me),
        vec![SIGIO],
        "close turned async off"
    );
    syscalls::close(fd).unwrap();
    proc::set_current_pid(proc::INIT_PID);
    unload_clean();
}
