//! Smoke: a tap unit opens, reports its MAC, answers ARP for its address through the stack.
use driver_tests::*;
use xnu_sim::abi::*;
use xnu_sim::syscalls::{self, O_RDWR};

#[test]
fn tap_arp_request_gets_a_reply_tu4_ta1() {
    boot_and_load();
    let fd = syscalls::open("/dev/tap0", O_RDWR).expect("open tap0");
    let mut req = [0u8; 32];
    syscalls::ioctl(fd, tunnel::ioctl::SIOCGIFADDR, &mut req).expect("SIOCGIFADDR");
    let mac = req[..6].to_vec();
    assert_eq!(mac[0] & 0x03, 0x02, "TA-1: unicast, locally administered");
    assert_eq!(mac[5], 0);
    xnu_sim::stack::add_address("tap0", AF_INET, &[10, 9, 0, 1]).expect("inet");
    // drain what the stack may have queued (gratuitous ARP)
    let mut buf = [0u8; 2048];
    syscalls::ioctl_int(fd, tunnel::ioctl::FIONBIO, 1).unwrap();
    while syscalls::read(fd, &mut buf).is_ok() {}
    let peer = [0x02, 0, 0, 0, 0, 9];
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&peer);
    arp.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&peer);
    arp.extend_from_slice(&[10, 9, 0, 2]);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&[10, 9, 0, 1]);
    assert_eq!(syscalls::write(fd, &arp), Ok(arp.len()));
    let n = syscalls::read(fd, &mut buf).expect("an ARP reply");
    let reply = &buf[..n];
    assert_eq!(&reply[..6], &peer, "to the asker");
    assert_eq!(&reply[6..12], &mac[..], "from tap0's MAC");
    assert_eq!(&reply[12..14], &[0x08, 0x06]);
    assert_eq!(&reply[20..22], &[0, 2], "an ARP reply");
    syscalls::close(fd).unwrap();
    unload_clean();
}
