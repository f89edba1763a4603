//! Test harness: the real tunnel.kext (C shim + Rust core, built for the host) loaded into the
//! simulated kernel, plus packet builders for the tests.

use std::ptr::addr_of_mut;
use xnu_sim::abi::{kmod_info as KmodInfo, AF_INET, AF_INET6};
use xnu_sim::{Config, Fd};

// Links the driver into the test binary.
use tunnel as _;

pub mod tap;

extern "C" {
    /// The shim's `kmod_info` (shim/shim.c).
    static mut kmod_info: KmodInfo;
}

/// The kext's `kmod_info`, as the loader sees it.
pub fn kmod() -> *mut KmodInfo {
    // Only the address is taken; the simulator reads it like the kernel loader.
    addr_of_mut!(kmod_info)
}

/// Boots a strict simulated kernel (seed from `XNUSIM_SEED`, default 1).
pub fn boot() {
    xnu_sim::boot(Config::strict());
}

/// Loads the kext; panics if start fails.
pub fn load() {
    xnu_sim::kextload(kmod()).expect("kextload");
}

/// Boots and loads.
pub fn boot_and_load() {
    boot();
    load();
}

/// Unloads and asserts nothing is left behind.
pub fn unload_clean() {
    assert_eq!(
        xnu_sim::kextunload(),
        Ok(()),
        "unload must succeed with zero leaks"
    );
    assert!(xnu_sim::leaks().is_clean(), "{:?}", xnu_sim::leaks());
}

/// The device path of unit `n`.
pub fn dev(n: usize) -> String {
    format!("/dev/tun{n}")
}

/// Opens `/dev/tunN` read-write.
pub fn open_unit(n: usize) -> Fd {
    xnu_sim::syscalls::open(&dev(n), xnu_sim::syscalls::O_RDWR).expect("open")
}

/// A `sockaddr_in` (16 bytes, `sa_len` first).
pub fn sockaddr_in(addr: [u8; 4]) -> Vec<u8> {
    let mut sa = vec![0u8; 16];
    sa[0] = 16;
    sa[1] = AF_INET as u8;
    sa[4..8].copy_from_slice(&addr);
    sa
}

/// A `sockaddr_in6` (28 bytes).
pub fn sockaddr_in6(addr: [u8; 16]) -> Vec<u8> {
    let mut sa = vec![0u8; 28];
    sa[0] = 28;
    sa[1] = AF_INET6 as u8;
    sa[8..24].copy_from_slice(&addr);
    sa
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A UDP-in-IPv4 packet from `src` to `dst` carrying `payload`.
pub fn ipv4_udp(src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let total = 20 + 8 + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&4000u16.to_be_bytes());
    p[22..24].copy_from_slice(&5000u16.to_be_bytes());
    p[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p[28..].copy_from_slice(payload);
    p
}

/// A UDP-in-IPv6 packet carrying `payload`.
pub fn ipv6_udp(src: [u8; 16], dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 40 + 8 + payload.len()];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p[6] = 17;
    p[7] = 64;
    p[8..24].copy_from_slice(&src);
    p[24..40].copy_from_slice(&dst);
    p[48..].copy_from_slice(payload);
    p
}

/// Configures `tunN` as `ifconfig tunN 10.0.0.1 10.0.0.2` then `ifconfig tunN inet6 fd00::1`
/// do: the stack plumbs IPv4 and IPv6 through the driver's plumbers (U-8), the first
/// protocol marks the interface up (U-8a) and `SIOCSIFADDR` sets it running.
pub fn configure(name: &str) {
    xnu_sim::stack::add_address(name, AF_INET, &[10, 0, 0, 1]).expect("ifconfig inet");
    xnu_sim::stack::add_address(name, AF_INET6, &V6_LOCAL).expect("ifconfig inet6");
}

/// The text `ifconfig tunN` prints from the driver (`SIOCGIFSTATUS`), up to its NUL.
pub fn if_status(name: &str) -> String {
    let mut ifs = vec![0u8; 16 + 800 + 1];
    ifs[..name.len()].copy_from_slice(name.as_bytes());
    xnu_sim::stack::ioctl(name, xnu_sim::stack::cmd::SIOCGIFSTATUS, &mut ifs)
        .expect("SIOCGIFSTATUS");
    let ascii = &ifs[16..];
    let end = ascii.iter().position(|&b| b == 0).expect("NUL-terminated");
    String::from_utf8(ascii[..end].to_vec()).unwrap()
}

/// The interface statistics of `name` (`netstat -I`).
pub fn if_stats(name: &str) -> xnu_sim::netinspect::IfStats {
    xnu_sim::netinspect::interface(name)
        .expect("interface")
        .stats
}

/// The driver's counters of unit `n` (section 12), read through the driver's accessor.
pub fn counters(n: usize) -> tunnel::counters::UnitCounters {
    tunnel::unit::counters(n).expect("driver loaded")
}

/// Waits (at most 10 s) until `n` threads sleep in `msleep`.
pub fn wait_for_sleepers(n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while xnu_sim::sleep::sleeping_threads() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "no thread went to sleep"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Sends `payload` from the stack through `tunN` toward an IPv4 peer.
pub fn send_ipv4(name: &str, payload: &[u8]) -> Result<(), xnu_sim::Errno> {
    xnu_sim::stack::output(name, AF_INET, &sockaddr_in([10, 0, 0, 2]), payload)
}

/// Sends `payload` from the stack through `tunN` toward an IPv6 peer.
pub fn send_ipv6(name: &str, payload: &[u8]) -> Result<(), xnu_sim::Errno> {
    xnu_sim::stack::output(name, AF_INET6, &sockaddr_in6(V6_PEER), payload)
}

/// The IPv6 addresses the tests use: local, peer and a link-local one.
pub const V6_LOCAL: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// See [`V6_LOCAL`].
pub const V6_PEER: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
/// See [`V6_LOCAL`].
pub const V6_LINK_LOCAL: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
