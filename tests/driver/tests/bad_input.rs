//! Bad input, property-based (issue 5; docs/tun-contract.md sections 3, 5, 7, 8, 13): random write
//! lengths and headers, every ioctl command of the 't' and 'f' groups and random ones with
//! random argument bytes, random interface ioctls, and random sequences of all of these. No
//! kernel panic (it would abort the process), only the documented errnos (a device ioctl gives
//! the errors of its own row of section 7, and a command section 7 does not name gives
//! `ENOTTY` and nothing else), nothing leaked.
//!
//! Each case loads the kext, runs, closes and unloads with the leak check. Case counts are
//! small in the suite; `TUNNEL_SOAK=1` multiplies them. Cases that found bugs stay as explicit
//! regression tests at the end, and proptest keeps failing seeds in
//! `proptest-regressions/bad_input.txt`. `PROPTEST_RNG_SEED` fixes the cases drawn
//! (`scripts/soak.sh` sets it to the run's seed).

mod common;

use common::*;
use driver_tests::*;
use proptest::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Once;
use tunnel::ioctl as io;
use xnu_sim::abi::{AF_INET, AF_INET6};
use xnu_sim::syscalls::{self, O_NONBLOCK, O_RDWR};
use xnu_sim::{stack, Errno, Fd};

static BOOT: Once = Once::new();
static TRIED: AtomicU64 = AtomicU64::new(0);
static REPORTED: AtomicU64 = AtomicU64::new(0);

/// One kernel per process; every case loads and unloads the kext in it.
fn fresh_kext() -> Fd {
    BOOT.call_once(|| {
        boot_strict(0x5eed_0301);
    });
    load();
    open_unit(0)
}

fn finish(fd: Fd) {
    syscalls::close(fd).unwrap();
    assert_eq!(xnu_sim::kextunload(), Ok(()), "unload after bad input");
    assert_no_leaks("bad input");
    // The inputs this case tried, for scripts/soak.sh (which adds the lines up).
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

/// Errnos a write may return (section 5, errno #14..#18; no faults injected here).
const WRITE_ERRNOS: [Errno; 3] = [Errno::EIO, Errno::EINVAL, Errno::EAFNOSUPPORT];
/// Errnos the interface ioctls may return (section 8, errno #32, #33).
const IF_IOCTL_ERRNOS: [Errno; 2] = [Errno::EOPNOTSUPP, Errno::EINVAL];

/// Every command the contract names in the 't' and 'f' groups (section 7, one row each). The
/// driver knows these and no other.
const KNOWN: [u32; 17] = [
    io::TUNSDEBUG,
    io::TUNGDEBUG,
    io::TUNSIFINFO,
    io::TUNGIFINFO,
    io::TUNSLMODE,
    io::TUNGIFNAME,
    io::TUNSIFMODE,
    io::TUNSIFPID,
    io::TUNSIFHEAD,
    io::TUNGIFHEAD,
    io::FIONBIO,
    io::FIOASYNC,
    io::FIONREAD,
    io::FIOSETOWN,
    io::FIOGETOWN,
    io::TIOCSPGRP,
    io::TIOCGPGRP,
];

/// The errors section 7 gives a command the driver knows (its row's "errors" column; success
/// is always possible), or `None` for a command it does not know, whose one outcome is
/// `ENOTTY` (the "any other" row, errno #30).
fn documented_errnos(cmd: u32) -> Option<&'static [Errno]> {
    match cmd {
        // errno #26 (type checked first), #27.
        io::TUNSIFINFO => Some(&[Errno::EPROTOTYPE, Errno::EINVAL]),
        // errno #24 (up, checked first), #25.
        io::TUNSIFMODE => Some(&[Errno::EBUSY, Errno::EINVAL]),
        // IO-2, IO-3, errno #28, #29. FIOSETOWN reaches the driver as TIOCSPGRP (or fails
        // with ESRCH above it); IO-5 when it arrives unchanged.
        io::TIOCSPGRP | io::FIOSETOWN => Some(&[Errno::EINVAL, Errno::ESRCH]),
        known if KNOWN.contains(&known) => Some(&[]),
        _ => None,
    }
}

/// A device ioctl through the syscall layer, with a buffer sized from the command and filled
/// with `bytes` (repeated). A known command succeeds or fails with one of its own errors; any
/// other command fails with `ENOTTY` and nothing else (section 7, errno #30).
fn device_ioctl(fd: Fd, cmd: u32, bytes: &[u8]) -> Result<(), Errno> {
    TRIED.fetch_add(1, SeqCst);
    let len = syscalls::ioctl_arg_len(cmd).max(4);
    let mut arg: Vec<u8> = (0..len)
        .map(|i| bytes.get(i % bytes.len().max(1)).copied().unwrap_or(0))
        .collect();
    let r = syscalls::ioctl(fd, cmd, &mut arg);
    match (documented_errnos(cmd), r) {
        (None, r) => assert_eq!(
            r,
            Err(Errno::ENOTTY),
            "ioctl {cmd:#010x} {bytes:02x?}: not a command of section 7, so errno #30"
        ),
        (Some(_), Ok(())) => {}
        (Some(errors), Err(e)) => assert!(
            errors.contains(&e),
            "ioctl {cmd:#010x} {bytes:02x?}: {e:?} is not an error section 7 gives this command"
        ),
    }
    r
}

/// An interface ioctl with a buffer sized from the command (NULL when it encodes no size).
fn interface_ioctl(cmd: u32, bytes: &[u8]) -> Result<(), Errno> {
    TRIED.fetch_add(1, SeqCst);
    let len = syscalls::ioctl_arg_len(cmd);
    let mut arg: Vec<u8> = (0..len)
        .map(|i| bytes.get(i % bytes.len().max(1)).copied().unwrap_or(0))
        .collect();
    let r = stack::ioctl("tun0", cmd, &mut arg);
    if let Err(e) = r {
        assert!(
            IF_IOCTL_ERRNOS.contains(&e),
            "interface ioctl {cmd:#010x}: undocumented {e:?}"
        );
    }
    r
}

/// A write of `len` bytes starting with `head`; returns the result after checking it against
/// the documented set.
fn write(fd: Fd, len: usize, head: &[u8], fill: u8) -> Result<usize, Errno> {
    TRIED.fetch_add(1, SeqCst);
    let mut buf = vec![fill; len];
    let n = head.len().min(len);
    buf[..n].copy_from_slice(&head[..n]);
    let r = syscalls::write(fd, &buf);
    match r {
        Ok(n) => assert_eq!(n, len, "a write is all or nothing"),
        Err(e) => assert!(WRITE_ERRNOS.contains(&e), "write {len}: undocumented {e:?}"),
    }
    r
}

/// The raw-mode outcome the contract gives for a write (W1, W2, W6, W8/W9).
fn raw_expected(len: usize, first: u8) -> Result<usize, Errno> {
    if len == 0 {
        Ok(0)
    } else if len > 65535 {
        Err(Errno::EIO)
    } else if matches!(first >> 4, 4 | 6) {
        Ok(len)
    } else {
        Err(Errno::EAFNOSUPPORT)
    }
}

/// The AF-header-mode outcome (W1, W2, W3, W6 before W7, W7, W8/W9; F-3).
fn af_expected(len: usize, header: [u8; 4]) -> Result<usize, Errno> {
    let family = u32::from_be_bytes(header);
    if len == 0 {
        Ok(0)
    } else if len > 65539 {
        Err(Errno::EIO)
    } else if len < 4 {
        Err(Errno::EINVAL)
    } else if family == AF_INET || family == AF_INET6 {
        Ok(len)
    } else {
        Err(Errno::EAFNOSUPPORT)
    }
}

/// A length biased towards the edges (0..3, around 65535 and 65539) and anywhere to 70,000.
fn length() -> impl Strategy<Value = usize> {
    prop_oneof![
        0usize..8,
        65530usize..65545,
        0usize..70_000,
        prop::sample::select(vec![20usize, 40, 1500, 1504, 65535, 65536, 65539, 65540]),
    ]
}

/// A command of the 't' or 'f' group: any number, any direction, a size from the usual ones.
fn group_command() -> impl Strategy<Value = u32> {
    (
        prop::sample::select(vec![io::IOC_VOID, io::IOC_IN, io::IOC_OUT, io::IOC_INOUT]),
        prop::sample::select(vec![b't', b'f']),
        any::<u8>(),
        prop::sample::select(vec![0usize, 1, 2, 4, 8, 16, 32, 128]),
    )
        .prop_map(|(dir, group, num, len)| io::ioc(dir, group, num, len))
}

/// Any command at all: a known one, one of the groups, or 32 random bits (size capped so the
/// buffer stays small).
fn any_command() -> impl Strategy<Value = u32> {
    prop_oneof![
        prop::sample::select(KNOWN.to_vec()),
        group_command(),
        any::<u32>().prop_map(|c| c & !(0x1f00 << 16)),
    ]
}

/// Interface ioctl commands: the contract's, and random ones.
fn if_command() -> impl Strategy<Value = u32> {
    prop_oneof![
        prop::sample::select(vec![
            io::SIOCSIFADDR,
            io::SIOCAIFADDR,
            io::SIOCSIFDSTADDR,
            io::SIOCDIFADDR,
            io::SIOCSIFFLAGS,
            io::SIOCSIFMTU,
            io::SIOCADDMULTI,
            io::SIOCDELMULTI,
            io::SIOCGIFSTATUS,
        ]),
        any::<u32>().prop_map(|c| c & !(0x1f00 << 16)),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Write { len: usize, head: Vec<u8>, fill: u8 },
    DeviceIoctl { cmd: u32, bytes: Vec<u8> },
    InterfaceIoctl { cmd: u32, bytes: Vec<u8> },
    Output { family: u32, len: usize, first: u8 },
    Read { len: usize },
    Select,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (
            length(),
            prop::collection::vec(any::<u8>(), 0..8),
            any::<u8>()
        )
            .prop_map(|(len, head, fill)| Op::Write { len, head, fill }),
        (any_command(), prop::collection::vec(any::<u8>(), 0..12))
            .prop_map(|(cmd, bytes)| Op::DeviceIoctl { cmd, bytes }),
        (if_command(), prop::collection::vec(any::<u8>(), 0..12))
            .prop_map(|(cmd, bytes)| Op::InterfaceIoctl { cmd, bytes }),
        (
            prop::sample::select(vec![AF_INET, AF_INET6, 0, 1, 18, 255]),
            0usize..3000,
            any::<u8>()
        )
            .prop_map(|(family, len, first)| Op::Output { family, len, first }),
        (0usize..3000).prop_map(|len| Op::Read { len }),
        Just(Op::Select),
        Just(Op::Reopen),
    ]
}

/// Runs `op`, checking its outcome against the documented set, and returns it: the bytes a
/// write or read moved, the readable descriptors of a select, 0 for the others.
fn run(fd: &mut Fd, op: &Op) -> Result<usize, Errno> {
    match op {
        Op::Write { len, head, fill } => write(*fd, *len, head, *fill),
        Op::DeviceIoctl { cmd, bytes } => device_ioctl(*fd, *cmd, bytes).map(|()| 0),
        Op::InterfaceIoctl { cmd, bytes } => interface_ioctl(*cmd, bytes).map(|()| 0),
        Op::Output { family, len, first } => {
            TRIED.fetch_add(1, SeqCst);
            let mut payload = vec![0x11u8; *len];
            if let Some(b) = payload.first_mut() {
                *b = *first;
            }
            let dest = if *family == AF_INET6 {
                sockaddr_in6([0xfd; 16])
            } else {
                let mut sa = sockaddr_in([10, 0, 0, 2]);
                sa[1] = *family as u8;
                sa
            };
            let r = stack::output("tun0", *family, &dest, &payload);
            match r {
                // O1..O5; ENXIO from the stack itself when no protocol of that family is
                // attached (dlil.c dlil_output: find_attached_proto finds none).
                Ok(())
                | Err(Errno::EHOSTDOWN)
                | Err(Errno::EAFNOSUPPORT)
                | Err(Errno::ENOBUFS)
                | Err(Errno::ENXIO) => {}
                Err(e) => panic!("output family {family}: undocumented {e:?}"),
            }
            r.map(|()| 0)
        }
        Op::Read { len } => {
            TRIED.fetch_add(1, SeqCst);
            // Random FIONBIO(0) may have made the descriptor blocking: never block here.
            syscalls::fcntl_setfl(*fd, O_NONBLOCK).unwrap();
            let mut buf = vec![0u8; *len];
            let r = syscalls::read(*fd, &mut buf);
            match r {
                Ok(n) => assert!(n <= *len),
                Err(Errno::EAGAIN) => {} // RD-4
                Err(e) => panic!("read: undocumented {e:?}"),
            }
            r
        }
        Op::Select => {
            TRIED.fetch_add(1, SeqCst);
            let (r, w) =
                syscalls::select(&[*fd], &[*fd], Some(std::time::Duration::ZERO)).expect("select");
            assert_eq!(w, vec![*fd], "SEL-2: always writable");
            Ok(r.len())
        }
        Op::Reopen => {
            TRIED.fetch_add(1, SeqCst);
            syscalls::close(*fd).unwrap();
            *fd = syscalls::open("/dev/tun0", O_RDWR).expect("reopen");
            Ok(0)
        }
    }
}

proptest! {
    #![proptest_config(cases(48))]

    /// W1, W2, W6, W8, W9 (errno #13, #14, #18, #19): raw writes of any length and first byte
    /// give exactly the documented outcome, whether the interface is up or down.
    #[test]
    fn raw_writes_of_any_length_and_version_give_the_documented_outcome(
        writes in prop::collection::vec((length(), any::<u8>(), any::<bool>()), 1..6)
    ) {
        let fd = fresh_kext();
        for (len, first, up) in writes {
            if up {
                configure("tun0");
            } else {
                stack::set_flags("tun0", 0, xnu_sim::abi::IFF_UP).unwrap();
            }
            prop_assert_eq!(write(fd, len, &[first], 0x45), raw_expected(len, first));
        }
        finish(fd);
    }

    /// W1..W3, W6, W7, F-3 (errno #14, #15, #18): AF-header writes with random headers.
    #[test]
    fn af_header_writes_with_random_headers_give_the_documented_outcome(
        writes in prop::collection::vec(
            (length(), prop_oneof![
                Just([0u8, 0, 0, 2]), Just([0u8, 0, 0, 30]), any::<[u8; 4]>()
            ], any::<u8>()),
            1..6,
        )
    ) {
        let fd = fresh_kext();
        configure("tun0");
        syscalls::ioctl_int(fd, io::TUNSIFHEAD, 1).expect("TUNSIFHEAD");
        for (len, header, version) in writes {
            let mut head = header.to_vec();
            head.push(version);
            prop_assert_eq!(write(fd, len, &head, 0), af_expected(len, header));
        }
        finish(fd);
    }

    /// Section 7, errno #24..#30: every 't'/'f' command (and random numbers) with random
    /// argument bytes answers 0 or a documented errno, and the unit still works afterwards.
    #[test]
    fn device_ioctls_with_random_arguments_give_documented_errnos_only(
        calls in prop::collection::vec((any_command(), prop::collection::vec(any::<u8>(), 0..12)), 1..24)
    ) {
        let mut fd = fresh_kext();
        for (cmd, bytes) in &calls {
            let _ = device_ioctl(fd, *cmd, bytes); // checked inside
        }
        // Still a working device: back to defaults by close/reopen, then one packet each way.
        prop_assert_eq!(run(&mut fd, &Op::Reopen), Ok(0));
        configure("tun0");
        let packet = ipv4_udp([10, 0, 0, 2], [10, 0, 0, 1], b"after");
        prop_assert_eq!(syscalls::write(fd, &packet), Ok(packet.len()));
        finish(fd);
    }

    /// Section 8, errno #32, #33: random interface ioctls with random arguments.
    #[test]
    fn interface_ioctls_with_random_arguments_give_documented_errnos_only(
        calls in prop::collection::vec((if_command(), prop::collection::vec(any::<u8>(), 0..12)), 1..24)
    ) {
        let fd = fresh_kext();
        for (cmd, bytes) in &calls {
            let _ = interface_ioctl(*cmd, bytes); // checked inside
        }
        finish(fd);
    }

    /// Random sequences of everything: writes, device and interface ioctls, output, reads,
    /// selects, close and reopen. Only documented errnos; nothing leaked at unload.
    #[test]
    fn random_sequences_of_everything_leak_nothing(ops in prop::collection::vec(op(), 1..40)) {
        let mut fd = fresh_kext();
        configure("tun0");
        for op in &ops {
            let _ = run(&mut fd, op); // checked inside against the documented set
        }
        finish(fd);
    }
}

/// Every number of the 't' and 'f' groups, in every direction, with all-ones and all-zero
/// arguments: a deterministic sweep next to the random ones. Section 7: each of the 17
/// commands its table names succeeds or fails with one of its own errors; every other command
/// is `ENOTTY` ("any other" row, errno #30): `TAPSVNETHDR` (`TUNSIFINFO` with another size),
/// FreeBSD's `TUNSTRANSIENT` (section 1: an `_IOW('t', n, int)`, whatever its n), and every
/// other direction and size of a known number.
#[test]
fn every_t_and_f_group_command_gives_a_documented_errno() {
    let mut fd = fresh_kext();
    let mut known = std::collections::BTreeSet::new();
    let mut unknown = 0usize;
    for group in [b't', b'f'] {
        for num in 0..=255u8 {
            for dir in [io::IOC_VOID, io::IOC_IN, io::IOC_OUT, io::IOC_INOUT] {
                for len in [0usize, 4, 8, 32] {
                    let cmd = io::ioc(dir, group, num, len);
                    for bytes in [[0xff], [0]] {
                        let r = device_ioctl(fd, cmd, &bytes);
                        if KNOWN.contains(&cmd) {
                            known.insert(cmd);
                        } else {
                            assert_eq!(r, Err(Errno::ENOTTY), "errno #30: {cmd:#010x}");
                            unknown += 1;
                        }
                    }
                }
            }
        }
        // Modes the sweep may have switched on are reset by close (section 10 step 5).
        assert_eq!(run(&mut fd, &Op::Reopen), Ok(0));
    }
    // The sweep met every command of the table (so both branches above were exercised).
    assert_eq!(known.len(), KNOWN.len(), "known commands met: {known:x?}");
    assert_eq!(unknown, 2 * 256 * 4 * 4 * 2 - 2 * KNOWN.len());
    finish(fd);
}

/// Edge cases of every kind in one fixed sequence, each outcome checked against the contract:
/// W2 at 65536, a runt (WR-3), W3 and W7 in AF mode, output of a family no protocol carries,
/// reads of 0 and 1 bytes, select, SIOCSIFMTU with a garbage argument, close and reopen; then
/// the unit counters the writes moved (section 5 "counters" column, section 12).
#[test]
fn a_fixed_sequence_of_edge_cases_gives_documented_outcomes() {
    let mut fd = fresh_kext();
    configure("tun0");
    let before = counters(0);
    let steps: [(Op, Result<usize, Errno>, &str); 11] = [
        (
            Op::Write {
                len: 65536,
                head: vec![0x45],
                fill: 0,
            },
            Err(Errno::EIO),
            "W2, errno #14: more than TUNMRU in raw mode",
        ),
        (
            Op::Write {
                len: 3,
                head: vec![0x60],
                fill: 0,
            },
            Ok(3),
            "WR-3, W9: a 3-byte runt with nibble 6 is not validated, it goes to the stack",
        ),
        (
            Op::DeviceIoctl {
                cmd: io::TUNSIFHEAD,
                bytes: vec![1],
            },
            Ok(0),
            "TUNSIFHEAD(1): AF-header mode (F-1)",
        ),
        (
            Op::Write {
                len: 3,
                head: vec![0, 0, 0],
                fill: 0,
            },
            Err(Errno::EINVAL),
            "W3, errno #15: AF mode, 1..3 bytes",
        ),
        (
            Op::Write {
                len: 4,
                head: vec![0, 0, 0, 2],
                fill: 0,
            },
            Ok(4),
            "W7: AF mode, header only: the full length, dropped",
        ),
        (
            Op::Output {
                family: 18,
                len: 10,
                first: 0x45,
            },
            Err(Errno::ENXIO),
            "no protocol of family 18 on tun0: the stack refuses before the driver \
             (dlil_output, find_attached_proto)",
        ),
        (
            Op::Read { len: 0 },
            Ok(0),
            "RD-3: a zero-length read returns 0",
        ),
        (
            Op::Read { len: 1 },
            Err(Errno::EAGAIN),
            "RD-4, errno #7: the queue is empty and the read non-blocking",
        ),
        (
            Op::Select,
            Ok(0),
            "SEL-1: nothing queued, not readable (SEL-2: writable, checked in run)",
        ),
        (
            Op::InterfaceIoctl {
                cmd: io::SIOCSIFMTU,
                bytes: vec![0xff],
            },
            Err(Errno::EINVAL),
            "errno #32: SIOCSIFMTU with MTU -1, outside 72..65535",
        ),
        (Op::Reopen, Ok(0), "close, then open again"),
    ];
    for (op, expected, rule) in &steps {
        assert_eq!(run(&mut fd, op), *expected, "{rule}: {op:?}");
    }
    assert_eq!(
        syscalls::ioctl_int(fd, io::TUNGIFHEAD, -1),
        Ok(0),
        "section 10 step 5: raw framing again after close"
    );
    let after = counters(0);
    assert_eq!(
        (
            after.ierrors - before.ierrors,
            after.ipackets - before.ipackets,
            after.ibytes - before.ibytes,
            after.iqdrops - before.iqdrops,
            after.oerrors - before.oerrors,
        ),
        (2, 1, 3, 1, 0),
        "ierrors: W2 and W3; ipackets/ibytes: the 3-byte runt; iqdrops: W7; no output error \
         (the family-18 output never reached the driver)"
    );
    finish(fd);
}
