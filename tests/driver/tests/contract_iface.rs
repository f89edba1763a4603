//! The interface (ifnet) ioctls (docs/tun-contract.md section 8).

use driver_tests::*;
use tunnel::ioctl::{SIOCADDMULTI, SIOCDELMULTI, SIOCDIFADDR, SIOCSIFADDR, SIOCSIFMTU};
use xnu_sim::abi::*;
use xnu_sim::syscalls;
use xnu_sim::{netinspect, stack, Errno};

fn flags(name: &str) -> u16 {
    netinspect::interface(name).unwrap().flags
}

/// SIOCSIFADDR, SIOCAIFADDR, SIOCSIFDSTADDR: each brings the interface up and running; the
/// argument is an opaque ifaddr (never read) and may be NULL.
#[test]
fn address_commands_bring_the_interface_up_and_running() {
    boot_and_load();
    let fd = open_unit(0);
    for (n, cmd) in [
        stack::cmd::SIOCSIFADDR,
        stack::cmd::SIOCAIFADDR,
        stack::cmd::SIOCSIFDSTADDR,
    ]
    .into_iter()
    .enumerate()
    {
        stack::set_flags("tun0", 0, IFF_UP | IFF_RUNNING).unwrap();
        // NULL argument: tolerated.
        stack::ioctl("tun0", cmd, &mut []).unwrap_or_else(|e| panic!("{n}: {e:?}"));
        assert_eq!(
            flags("tun0") & (IFF_UP | IFF_RUNNING),
            IFF_UP | IFF_RUNNING,
            "{cmd:#x}"
        );
    }
    // Through the generic layer: first address SIOCSIFADDR, later ones SIOCAIFADDR.
    stack::set_flags("tun0", 0, IFF_UP | IFF_RUNNING).unwrap();
    stack::add_address("tun0", AF_INET, &[10, 0, 0, 1]).unwrap();
    assert_ne!(flags("tun0") & IFF_UP, 0);
    stack::add_address("tun0", AF_INET, &[10, 0, 0, 5]).unwrap();
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// SIOCDIFADDR → 0 and nothing else (the stack removes the address); SIOCSIFFLAGS accepts any
/// combination (NOARP, cleared MULTICAST, BROADCAST…) and the driver keeps no shadow copy: it
/// reads IFF_UP live.
#[test]
fn sifflags_and_difaddr_are_accepted_as_is() {
    boot_and_load();
    let fd = open_unit(1);
    configure("tun1");
    assert_eq!(stack::ioctl("tun1", SIOCDIFADDR, &mut []), Ok(()));
    assert_eq!(
        flags("tun1") & IFF_UP,
        IFF_UP,
        "SIOCDIFADDR changes no flag"
    );
    stack::set_flags("tun1", IFF_NOARP | IFF_BROADCAST, IFF_MULTICAST).unwrap();
    assert_eq!(
        flags("tun1"),
        IFF_UP | IFF_RUNNING | IFF_NOARP | IFF_BROADCAST | IFF_POINTOPOINT
    );
    // Taken down by the stack: writes are now dropped (the driver read IFF_UP live).
    stack::set_flags("tun1", 0, IFF_UP).unwrap();
    let p = ipv4_udp([10, 0, 0, 2], [10, 0, 0, 1], b"down");
    assert_eq!(syscalls::write(fd, &p), Ok(p.len()));
    assert!(netinspect::received("tun1").is_empty());
    stack::set_flags("tun1", IFF_UP, 0).unwrap();
    assert_eq!(syscalls::write(fd, &p), Ok(p.len()));
    assert_eq!(netinspect::received("tun1").len(), 1);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// SIOCSIFMTU, errno #32: 72..65535 sets the MTU; outside → EINVAL, MTU unchanged.
#[test]
fn sifmtu_accepts_72_to_65535() {
    boot_and_load();
    let fd = open_unit(2);
    for mtu in [72, 1280, 9000, 65535] {
        stack::set_mtu("tun2", mtu).unwrap();
        assert_eq!(netinspect::interface("tun2").unwrap().mtu, mtu as u32);
    }
    for bad in [71, 0, -1, 65536, 1 << 20] {
        assert_eq!(stack::set_mtu("tun2", bad), Err(Errno::EINVAL), "{bad}");
        assert_eq!(netinspect::interface("tun2").unwrap().mtu, 65535);
    }
    assert_eq!(
        stack::ioctl("tun2", SIOCSIFMTU, &mut []),
        Err(Errno::EINVAL),
        "NULL ifreq"
    );
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// SIOCADDMULTI/SIOCDELMULTI → 0, nothing else.
#[test]
fn multicast_add_and_delete_succeed() {
    boot_and_load();
    let fd = open_unit(3);
    let before = netinspect::interface("tun3").unwrap();
    let mut req = [0u8; 32];
    assert_eq!(stack::ioctl("tun3", SIOCADDMULTI, &mut req), Ok(()));
    assert_eq!(stack::ioctl("tun3", SIOCDELMULTI, &mut req), Ok(()));
    assert_eq!(stack::ioctl("tun3", SIOCADDMULTI, &mut []), Ok(()), "NULL");
    let after = netinspect::interface("tun3").unwrap();
    assert_eq!((after.flags, after.mtu), (before.flags, before.mtu));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// SIOCGIFSTATUS: appends "\topen (pid P)\n" or "\tclosed\n" to what is there, NUL-terminated,
/// within IFSTATMAX; a full buffer is cut, never overrun. NULL is tolerated.
#[test]
fn gifstatus_appends_open_or_closed() {
    boot_and_load();
    let fd = open_unit(4);
    assert_eq!(
        if_status("tun4"),
        format!("\topen (pid {})\n", xnu_sim::proc::INIT_PID)
    );
    // Appended after text already there.
    let mut ifs = vec![0u8; 817];
    ifs[16..22].copy_from_slice(b"\tfoo\n\0");
    stack::ioctl("tun4", stack::cmd::SIOCGIFSTATUS, &mut ifs).unwrap();
    let end = 16 + ifs[16..].iter().position(|&b| b == 0).unwrap();
    assert_eq!(
        std::str::from_utf8(&ifs[16..end]).unwrap(),
        format!("\tfoo\n\topen (pid {})\n", xnu_sim::proc::INIT_PID)
    );
    // Nearly full: cut at IFSTATMAX, the last byte stays NUL.
    let mut ifs = vec![b'x'; 817];
    ifs[16 + 795] = 0;
    ifs[816] = 0xee;
    stack::ioctl("tun4", stack::cmd::SIOCGIFSTATUS, &mut ifs).unwrap();
    assert_eq!(&ifs[16 + 795..816], b"\topen");
    assert_eq!(ifs[816], 0, "NUL-terminated within IFSTATMAX + 1");
    assert_eq!(
        stack::ioctl("tun4", stack::cmd::SIOCGIFSTATUS, &mut []),
        Ok(())
    );
    syscalls::close(fd).unwrap();
    assert_eq!(if_status("tun4"), "\tclosed\n");
    unload_clean();
}

/// Section 8 "any other", errno #33: unknown interface ioctls → EOPNOTSUPP, NULL tolerated.
#[test]
fn unknown_interface_ioctls_are_eopnotsupp() {
    boot_and_load();
    let fd = open_unit(5);
    for cmd in [0xc020_6911u32, 0x8020_6913, 0xc020_6933, 0x2000_0000] {
        assert_eq!(
            stack::ioctl("tun5", cmd, &mut [0u8; 64]),
            Err(Errno::EOPNOTSUPP)
        );
        assert_eq!(stack::ioctl("tun5", cmd, &mut []), Err(Errno::EOPNOTSUPP));
    }
    let _ = SIOCSIFADDR;
    syscalls::close(fd).unwrap();
    unload_clean();
}
