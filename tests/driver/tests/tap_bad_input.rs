//! Bad input on tap units, property-based (issue 14; docs/tap-contract.md sections 6, 7, 9, 10,
//! 15): random write lengths and headers (the exact TW1..TW8 outcome and counter), every ioctl
//! of the 't', 'f', 'i' and 'V' groups and random ones with random argument bytes, random
//! interface ioctls and link-address requests, random output frames, and random sequences of
//! all of these. No kernel panic, only the documented errnos, nothing leaked.
//!
//! Each case loads the kext, runs, closes and unloads with the leak check. Case counts are
//! small in the suite; `TUNNEL_SOAK=1` multiplies them. proptest keeps failing seeds in
//! `proptest-regressions/tap_bad_input.txt`; `PROPTEST_RNG_SEED` fixes the cases drawn.

mod common;

use common::*;
use driver_tests::tap::*;
use driver_tests::*;
use proptest::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Once;
use tunnel::ioctl as io;
use xnu_sim::abi::*;
use xnu_sim::syscalls::{self, O_NONBLOCK, O_RDWR};
use xnu_sim::{link, netinspect, stack, Errno, Fd};

static BOOT: Once = Once::new();
static TRIED: AtomicU64 = AtomicU64::new(0);
static REPORTED: AtomicU64 = AtomicU64::new(0);

/// One kernel per process; every case loads and unloads the kext in it.
fn fresh_kext() -> Fd {
    BOOT.call_once(|| {
        boot_strict(0x7a9_0301);
    });
    load();
    open_tap(0)
}

fn finish(fd: Fd) {
    syscalls::close(fd).unwrap();
    assert_eq!(xnu_sim::kextunload(), Ok(()), "unload after bad input");
    assert_no_leaks("tap bad input");
    let tried = TRIED.load(SeqCst);
    figure("bad_inputs", tried - REPORTED.swap(tried, SeqCst));
}

fn cases(short: u32) -> ProptestConfig {
    ProptestConfig {
        cases: if soak() { short * 16 } else { short },
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    }
}

/// `SIOCGIFADDR` / `SIOCSIFADDR` as device ioctls (the MAC register, TI-1).
const SIOCGIFADDR: u32 = 0xc020_6921;
const SIOCSIFADDR: u32 = 0x8020_690c;

/// Every device command section 9 gives tap (one row each, `TAP…` = `TUN…` numbers).
const KNOWN: [u32; 14] = [
    io::TAPSDEBUG,
    io::TAPGDEBUG,
    io::TAPSIFINFO,
    io::TAPGIFINFO,
    io::TAPGIFNAME,
    SIOCGIFADDR,
    SIOCSIFADDR,
    io::FIONBIO,
    io::FIOASYNC,
    io::FIONREAD,
    io::FIOSETOWN,
    io::FIOGETOWN,
    io::TIOCSPGRP,
    io::TIOCGPGRP,
];

/// The errors section 9 gives a known command, or `None` for any other (errno #23: `ENOTTY`).
fn documented_errnos(cmd: u32) -> Option<&'static [Errno]> {
    match cmd {
        io::TAPSIFINFO => Some(&[Errno::EPROTOTYPE, Errno::EINVAL]), // errno #22
        io::TIOCSPGRP | io::FIOSETOWN => Some(&[Errno::EINVAL, Errno::ESRCH]), // errno #24
        known if KNOWN.contains(&known) => Some(&[]),
        _ => None,
    }
}

fn filled(len: usize, bytes: &[u8]) -> Vec<u8> {
    (0..len)
        .map(|i| bytes.get(i % bytes.len().max(1)).copied().unwrap_or(0))
        .collect()
}

/// A device ioctl with a buffer sized from the command, filled with `bytes`: a known command
/// succeeds or fails with its own errors, any other is `ENOTTY` and nothing else.
fn device_ioctl(fd: Fd, cmd: u32, bytes: &[u8]) -> Result<(), Errno> {
    TRIED.fetch_add(1, SeqCst);
    let mut arg = filled(syscalls::ioctl_arg_len(cmd).max(4), bytes);
    let r = syscalls::ioctl(fd, cmd, &mut arg);
    match (documented_errnos(cmd), r) {
        (None, r) => assert_eq!(r, Err(Errno::ENOTTY), "{cmd:#010x} {bytes:02x?}: errno #23"),
        (Some(_), Ok(())) => {}
        (Some(errors), Err(e)) => {
            assert!(
                errors.contains(&e),
                "{cmd:#010x} {bytes:02x?}: {e:?} not in section 9"
            )
        }
    }
    r
}

/// An interface ioctl (NULL when the command encodes no size): 0, `EINVAL` (errno #25), the
/// media's `EFAULT`, or `EOPNOTSUPP` (errno #26).
fn interface_ioctl(cmd: u32, bytes: &[u8]) -> Result<(), Errno> {
    TRIED.fetch_add(1, SeqCst);
    let mut arg = filled(syscalls::ioctl_arg_len(cmd), bytes);
    let r = stack::ioctl("tap0", cmd, &mut arg);
    if let Err(e) = r {
        assert!(
            [Errno::EOPNOTSUPP, Errno::EINVAL, Errno::EFAULT].contains(&e),
            "interface ioctl {cmd:#010x}: undocumented {e:?}"
        );
    }
    r
}

/// What the write table says a write of `len` bytes whose type/length field is `field` does
/// while tapN is `up`: its result, and which counter moves (0 ierrors, 1 iqdrops, 2 ipackets,
/// none for TW1).
fn write_expected(len: usize, field: u16, up: bool) -> (Result<usize, Errno>, Option<usize>) {
    match len {
        0 => (Ok(0), None),
        l if l > 65535 => (Err(Errno::EIO), Some(0)),
        l if l < 14 => (Err(Errno::EINVAL), Some(0)),
        l if l == 14 || (field <= 1500 && l - 14 < 8) => (Ok(l), Some(1)),
        l if !up => (Ok(l), Some(1)),
        l => (Ok(l), Some(2)),
    }
}

/// A write of `len` bytes starting with `head`, checked against the table and the counters.
fn write(fd: Fd, len: usize, head: &[u8], fill: u8) -> Result<usize, Errno> {
    TRIED.fetch_add(1, SeqCst);
    let mut buf = vec![fill; len];
    let n = head.len().min(len);
    buf[..n].copy_from_slice(&head[..n]);
    let field = if len >= 14 {
        u16::from_be_bytes([buf[12], buf[13]])
    } else {
        0
    };
    let up = netinspect::interface("tap0").unwrap().flags & IFF_UP != 0;
    let before = if_stats("tap0");
    let r = syscalls::write(fd, &buf);
    let after = if_stats("tap0");
    let (want, moved) = write_expected(len, field, up);
    assert_eq!(r, want, "write {len} field {field:#06x} up {up}");
    let delta = [
        after.ierrors - before.ierrors,
        after.iqdrops - before.iqdrops,
        after.ipackets - before.ipackets,
    ];
    let mut expected = [0u64; 3];
    if let Some(k) = moved {
        expected[k] = 1;
    }
    assert_eq!(delta, expected, "write {len}: ierrors/iqdrops/ipackets");
    r
}

/// A length biased towards the edges (0, 13, 14, 21, 22, 65535) and anywhere to 70,000.
fn length() -> impl Strategy<Value = usize> {
    prop_oneof![
        0usize..30,
        65530usize..65540,
        0usize..70_000,
        prop::sample::select(vec![14usize, 60, 1514, 1518, 9014, 65535, 65536]),
    ]
}

/// A type/length field biased towards the 802.3/Ethernet II border and the usual types.
fn ether_field() -> impl Strategy<Value = u16> {
    prop_oneof![
        1490u16..1510,
        prop::sample::select(vec![0x0800u16, 0x0806, 0x86dd, 0x8100, 0, 8]),
        any::<u16>(),
    ]
}

fn group_command() -> impl Strategy<Value = u32> {
    (
        prop::sample::select(vec![io::IOC_VOID, io::IOC_IN, io::IOC_OUT, io::IOC_INOUT]),
        prop::sample::select(vec![b't', b'f', b'i', b'V']),
        any::<u8>(),
        prop::sample::select(vec![0usize, 1, 4, 8, 16, 32, 128]),
    )
        .prop_map(|(dir, group, num, len)| io::ioc(dir, group, num, len))
}

fn any_command() -> impl Strategy<Value = u32> {
    prop_oneof![
        prop::sample::select(KNOWN.to_vec()),
        group_command(),
        any::<u32>().prop_map(|c| c & !(0x1f00 << 16)),
    ]
}

fn if_command() -> impl Strategy<Value = u32> {
    prop_oneof![
        prop::sample::select(vec![
            io::SIOCSIFADDR,
            io::SIOCAIFADDR,
            io::SIOCDIFADDR,
            io::SIOCSIFFLAGS,
            io::SIOCSIFMTU,
            io::SIOCADDMULTI,
            io::SIOCDELMULTI,
            io::SIOCGIFSTATUS,
            io::SIOCSIFLLADDR,
            io::SIOCGIFDEVMTU,
            io::SIOCSIFALTMTU,
            io::SIOCGIFMEDIA32,
            io::SIOCGIFMEDIA64,
        ]),
        any::<u32>().prop_map(|c| c & !(0x1f00 << 16)),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Write {
        len: usize,
        field: u16,
        fill: u8,
    },
    DeviceIoctl {
        cmd: u32,
        bytes: Vec<u8>,
    },
    InterfaceIoctl {
        cmd: u32,
        bytes: Vec<u8>,
    },
    SetLladdr {
        sa_len: u8,
        family: u8,
        mac: [u8; 6],
    },
    OutputRaw {
        len: usize,
        fill: u8,
    },
    OutputIp {
        len: usize,
    },
    Flags {
        up: bool,
        promisc: bool,
    },
    Read {
        len: usize,
    },
    Select,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (length(), ether_field(), any::<u8>()).prop_map(|(len, field, fill)| Op::Write {
            len,
            field,
            fill
        }),
        (any_command(), prop::collection::vec(any::<u8>(), 0..12))
            .prop_map(|(cmd, bytes)| Op::DeviceIoctl { cmd, bytes }),
        (if_command(), prop::collection::vec(any::<u8>(), 0..12))
            .prop_map(|(cmd, bytes)| Op::InterfaceIoctl { cmd, bytes }),
        (
            prop::sample::select(vec![6u8, 0, 8, 20]),
            prop::sample::select(vec![AF_LINK as u8, AF_UNSPEC as u8, AF_INET as u8]),
            any::<[u8; 6]>()
        )
            .prop_map(|(sa_len, family, mac)| Op::SetLladdr {
                sa_len,
                family,
                mac
            }),
        (0usize..3000, any::<u8>()).prop_map(|(len, fill)| Op::OutputRaw { len, fill }),
        (0usize..1500).prop_map(|len| Op::OutputIp { len }),
        (any::<bool>(), any::<bool>()).prop_map(|(up, promisc)| Op::Flags { up, promisc }),
        (0usize..3000).prop_map(|len| Op::Read { len }),
        Just(Op::Select),
        Just(Op::Reopen),
    ]
}

/// Runs `op`, checking its outcome against the documented set.
fn run(fd: &mut Fd, op: &Op) -> Result<usize, Errno> {
    match op {
        Op::Write { len, field, fill } => {
            let mut head = mac_of("tap0").to_vec();
            head.extend_from_slice(&PEER_MAC);
            head.extend_from_slice(&field.to_be_bytes());
            write(*fd, *len, &head, *fill)
        }
        Op::DeviceIoctl { cmd, bytes } => device_ioctl(*fd, *cmd, bytes).map(|()| 0),
        Op::InterfaceIoctl { cmd, bytes } => interface_ioctl(*cmd, bytes).map(|()| 0),
        Op::SetLladdr {
            sa_len,
            family,
            mac,
        } => {
            TRIED.fetch_add(1, SeqCst);
            let before = mac_of("tap0");
            let r = link::set_lladdr_sockaddr("tap0", *sa_len, *family, mac);
            let valid =
                *sa_len == 6 && u32::from(*family) == AF_LINK && mac[0] & 1 == 0 && *mac != [0; 6];
            if valid {
                assert_eq!(r, Ok(()), "TA-4: {mac:02x?}");
                assert_eq!(mac_of("tap0"), *mac);
            } else {
                assert_eq!(
                    r,
                    Err(Errno::EINVAL),
                    "errno #25: {sa_len} {family} {mac:02x?}"
                );
                assert_eq!(mac_of("tap0"), before, "unchanged");
            }
            r.map(|()| 0)
        }
        Op::OutputRaw { len, fill } => {
            TRIED.fetch_add(1, SeqCst);
            let r = stack::output_raw("tap0", &vec![*fill; *len]);
            match r {
                Ok(()) => assert!(*len >= 14, "TO3"),
                Err(Errno::EINVAL) => assert!(*len < 14, "TO3"),
                Err(Errno::EHOSTDOWN) | Err(Errno::ENOBUFS) => {} // TO1, TO2, TO4
                Err(e) => panic!("raw output {len}: undocumented {e:?}"),
            }
            r.map(|()| 0)
        }
        Op::OutputIp { len } => {
            TRIED.fetch_add(1, SeqCst);
            let p = ipv4_udp(TAP_IP, PEER_IP, &vec![0x11; *len]);
            let r = stack::output("tap0", AF_INET, &sockaddr_in(PEER_IP), &p);
            match r {
                // ENETDOWN: the stack's pre-output, before the driver.
                Ok(()) | Err(Errno::EHOSTDOWN) | Err(Errno::ENOBUFS) | Err(Errno::ENETDOWN) => {}
                Err(e) => panic!("output: undocumented {e:?}"),
            }
            r.map(|()| 0)
        }
        Op::Flags { up, promisc } => {
            TRIED.fetch_add(1, SeqCst);
            let (set, clear) = if *up { (IFF_UP, 0) } else { (0, IFF_UP) };
            stack::set_flags("tap0", set, clear).expect("TN-5: SIOCSIFFLAGS");
            let f = netinspect::interface("tap0").unwrap().flags;
            assert_eq!(f & IFF_RUNNING != 0, f & IFF_UP != 0, "TN-5");
            let pcount = netinspect::interface("tap0").unwrap().promisc_count;
            if *promisc || pcount > 0 {
                link::set_promiscuous("tap0", *promisc).expect("TN-4");
            }
            Ok(0)
        }
        Op::Read { len } => {
            TRIED.fetch_add(1, SeqCst);
            syscalls::fcntl_setfl(*fd, O_NONBLOCK).unwrap();
            let r = syscalls::read(*fd, &mut vec![0u8; *len]);
            match r {
                Ok(n) => assert!(n <= *len && (n >= 14 || n == *len), "TR-1: {n} of {len}"),
                Err(Errno::EAGAIN) => {}
                Err(e) => panic!("read: undocumented {e:?}"),
            }
            r
        }
        Op::Select => {
            TRIED.fetch_add(1, SeqCst);
            let zero = Some(std::time::Duration::ZERO);
            let (r, w) = syscalls::select(&[*fd], &[*fd], zero).expect("select");
            assert_eq!(w, vec![*fd], "TS-1: always writable");
            assert_eq!(
                r.len(),
                usize::from(queued(*fd) > 0),
                "TS-1: readable iff queued"
            );
            Ok(r.len())
        }
        Op::Reopen => {
            TRIED.fetch_add(1, SeqCst);
            syscalls::close(*fd).unwrap();
            *fd = syscalls::open("/dev/tap0", O_RDWR).expect("reopen");
            Ok(0)
        }
    }
}

proptest! {
    #![proptest_config(cases(48))]

    /// TW1..TW8 (errno #13..#19): writes of any length and type/length field give exactly the
    /// table's result and move exactly the table's counter, up or down.
    #[test]
    fn tap_writes_of_any_length_and_type_give_the_table_outcome(
        writes in prop::collection::vec((length(), ether_field(), any::<u8>(), any::<bool>()), 1..8)
    ) {
        let mut fd = fresh_kext();
        for (len, field, fill, up) in writes {
            run(&mut fd, &Op::Flags { up, promisc: false }).unwrap();
            let _ = run(&mut fd, &Op::Write { len, field, fill });
        }
        finish(fd);
    }

    /// Section 9, errno #22..#24: device commands with random arguments; the unit works after.
    #[test]
    fn tap_device_ioctls_with_random_arguments_give_documented_errnos_only(
        calls in prop::collection::vec((any_command(), prop::collection::vec(any::<u8>(), 0..12)), 1..24)
    ) {
        let mut fd = fresh_kext();
        for (cmd, bytes) in &calls {
            let _ = device_ioctl(fd, *cmd, bytes);
        }
        prop_assert_eq!(run(&mut fd, &Op::Reopen), Ok(0));
        stack::set_flags("tap0", IFF_UP, 0).unwrap();
        let f = ipv4_frame(mac_of("tap0"), b"after");
        prop_assert_eq!(syscalls::write(fd, &f), Ok(f.len()));
        finish(fd);
    }

    /// Section 10, errno #25, #26: interface ioctls and link-address requests at random.
    #[test]
    fn tap_interface_ioctls_with_random_arguments_give_documented_errnos_only(
        calls in prop::collection::vec((if_command(), prop::collection::vec(any::<u8>(), 0..12)), 1..24)
    ) {
        let fd = fresh_kext();
        configure_tap("tap0", Some(fd), TAP_IP);
        for (cmd, bytes) in &calls {
            let _ = interface_ioctl(*cmd, bytes);
        }
        finish(fd);
    }

    /// Random sequences of everything; only documented outcomes, nothing leaked at unload.
    #[test]
    fn random_tap_sequences_leak_nothing(ops in prop::collection::vec(op(), 1..40)) {
        let mut fd = fresh_kext();
        configure_tap("tap0", Some(fd), TAP_IP);
        link::arp_set("tap0", PEER_IP, PEER_MAC).unwrap();
        for op in &ops {
            let _ = run(&mut fd, op);
        }
        finish(fd);
    }
}

/// Every number of the 't', 'f', 'i' and 'V' groups in every direction and size, with
/// all-ones and all-zero arguments: each of the 14 commands section 9 names succeeds or fails
/// with its own errors; everything else is `ENOTTY` (errno #23: tun-only, virtio, VMware,
/// unknown). A deterministic sweep next to the random ones.
#[test]
fn every_t_f_i_and_v_group_command_gives_a_documented_errno() {
    let mut fd = fresh_kext();
    let mut known = std::collections::BTreeSet::new();
    let mut unknown = 0usize;
    for group in [b't', b'f', b'i', b'V'] {
        for num in 0..=255u8 {
            for dir in [io::IOC_VOID, io::IOC_IN, io::IOC_OUT, io::IOC_INOUT] {
                for len in [0usize, 4, 8, 32] {
                    let cmd = io::ioc(dir, group, num, len);
                    for bytes in [[0xff], [0]] {
                        let r = device_ioctl(fd, cmd, &bytes);
                        if KNOWN.contains(&cmd) {
                            known.insert(cmd);
                        } else {
                            assert_eq!(r, Err(Errno::ENOTTY), "{cmd:#010x}");
                            unknown += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(run(&mut fd, &Op::Reopen), Ok(0));
    }
    assert_eq!(known.len(), KNOWN.len(), "met: {known:x?}");
    assert_eq!(unknown, 4 * 256 * 4 * 4 * 2 - 2 * KNOWN.len());
    finish(fd);
}

/// Edge cases in one fixed sequence, each outcome checked, then the counters they moved:
/// TW2 at 65536, TW3 at 13, TW6 at 14 and for a short 802.3 frame, TW8 at 15 and a 22-byte
/// 802.3 frame, TO3 at 13, TO5 at 14, reads of 0 and 13 bytes, select, close and reopen.
#[test]
fn a_fixed_sequence_of_tap_edge_cases_gives_documented_outcomes() {
    let mut fd = fresh_kext();
    stack::set_flags("tap0", IFF_UP, 0).unwrap();
    let before = tap_counters(0);
    let w = |len, field| Op::Write {
        len,
        field,
        fill: 0,
    };
    let steps: [(Op, Result<usize, Errno>, &str); 12] = [
        (w(65536, 0x0800), Err(Errno::EIO), "TW2"),
        (w(13, 0x0800), Err(Errno::EINVAL), "TW3"),
        (w(14, 0x0800), Ok(14), "TW6: no payload"),
        (w(21, 1500), Ok(21), "TW6: 802.3, 7 payload bytes"),
        (w(22, 1500), Ok(22), "TW8: 802.3, 8 payload bytes"),
        (w(15, 1501), Ok(15), "TW8: an ethertype, 1 payload byte"),
        (
            Op::OutputRaw { len: 13, fill: 1 },
            Err(Errno::EINVAL),
            "TO3",
        ),
        (Op::OutputRaw { len: 14, fill: 1 }, Ok(0), "TO5"),
        (Op::Read { len: 0 }, Ok(0), "TR-1 (RD-3)"),
        (Op::Select, Ok(1), "TS-1: the 14-byte frame is queued"),
        (Op::Read { len: 13 }, Ok(13), "TR-1 (RD-2): truncated"),
        (Op::Reopen, Ok(0), "close, open again"),
    ];
    for (op, expected, rule) in &steps {
        assert_eq!(run(&mut fd, op), *expected, "{rule}: {op:?}");
    }
    let after = tap_counters(0);
    assert_eq!(
        (
            after.ierrors - before.ierrors,
            after.iqdrops - before.iqdrops,
            after.ipackets - before.ipackets,
            after.ibytes - before.ibytes,
            after.oerrors - before.oerrors,
            after.opackets - before.opackets,
            after.truncated_reads - before.truncated_reads,
        ),
        (2, 2, 2, 37, 1, 1, 1)
    );
    finish(fd);
}
