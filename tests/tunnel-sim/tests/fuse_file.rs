//! The simulated /dev/tunN as a FUSE file (docs/xnu-sim.md 6.3), used by this process through
//! ordinary Linux system calls; the in-process path (tests/inproc.rs) needs neither.
//!
//! Precondition of every test here: root and a `/dev/fuse` that opens read-write. This
//! binary is the test group `fuse` of `scripts/lib/preconditions.sh`: `scripts/test.sh` probes
//! the precondition and, when it is not met, leaves the group out and reports its tests as
//! skipped, with the reason. Run directly without it, a test fails and names what is missing;
//! it never passes without having run.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tunnel_sim::bridge::{configure_sim_interface, route};
use tunnel_sim::fusedev;
use tunnel_sim::ioctl_map::bsd_to_linux;
use xnu_sim::abi::AF_INET;
use xnu_sim::{netinspect, stack};

struct Mounted {
    dir: PathBuf,
    kind: &'static str,
    session: Option<(fuser::BackgroundSession, fusedev::OpenFiles)>,
}

impl Mounted {
    fn path(&self, unit: usize) -> PathBuf {
        self.dir.join(format!("{}{unit}", self.kind))
    }

    /// Unmounts, closes what is left, unloads with zero leaks.
    fn finish(mut self) {
        let (session, open) = self.session.take().unwrap();
        for _ in 0..100 {
            if open.count() == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(session);
        open.close_all();
        driver_tests::unload_clean();
    }
}

impl Drop for Mounted {
    /// On a failed assertion: unmount and remove the directory anyway.
    fn drop(&mut self) {
        drop(self.session.take());
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Boots, loads and mounts `/dev/tun0` and `/dev/tun1`. Fails, naming the precondition, when
/// this machine cannot: a test that cannot run must not pass (scripts/test.sh reports the group
/// skipped instead).
fn mount(test: &str) -> Mounted {
    mount_kind(test, "tun", Arc::new(configure_sim_interface))
}

/// As [`mount`], for the units of `kind` (`tun` or `tap`), configured by `on_open`.
fn mount_kind(test: &str, kind: &'static str, on_open: fusedev::OnOpen) -> Mounted {
    // SAFETY: plain getter.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "{test}: precondition not met: root (mounting FUSE needs root here); \
         scripts/test.sh reports the test group `fuse` skipped without it"
    );
    if let Err(why) = fusedev::available() {
        panic!(
            "{test}: precondition not met: FUSE ({why}); \
             scripts/test.sh reports the test group `fuse` skipped without it"
        );
    }
    tunnel_sim::boot_and_load(true);
    let dir = std::env::temp_dir().join(format!("tunnel-sim-test.{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let session = fusedev::mount_kind(&dir, kind, 2, on_open).expect("mount");
    Mounted {
        dir,
        kind,
        session: Some(session),
    }
}

fn open(path: &PathBuf, nonblock: bool) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(if nonblock { libc::O_NONBLOCK } else { 0 })
        .open(path)
}

fn send(name: &str, packet: &[u8]) {
    let (family, dest) = route(packet).unwrap();
    stack::output(name, family, &dest, packet).expect("stack output");
}

fn set_nonblock(f: &File, on: bool) {
    // SAFETY: fcntl on an open descriptor.
    unsafe {
        let flags = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        let flags = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        assert_eq!(libc::fcntl(f.as_raw_fd(), libc::F_SETFL, flags), 0);
    }
}

/// RD-5/RD-6 through FUSE: a blocking read is parked and answered when the stack sends; while
/// it is parked, a write on the same descriptor goes through (FOPEN_STREAM: no position lock).
#[test]
fn fuse_parked_read_is_answered_later_and_does_not_hold_up_a_write() {
    let m = mount("fuse_parked_read");
    let file = Arc::new(open(&m.path(0), false).expect("open /dev/tun0 file"));
    let reader = {
        let file = Arc::clone(&file);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            let n = (&*file).read(&mut buf).expect("parked read");
            buf.truncate(n);
            buf
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    assert!(!reader.is_finished(), "the read must wait for a packet");
    let up = driver_tests::ipv4_udp([10, 66, 0, 2], [10, 66, 0, 1], b"written while parked");
    assert_eq!((&*file).write(&up).expect("write"), up.len()); // W9
    assert_eq!(netinspect::received("tun0"), vec![(AF_INET, up)]);
    assert!(!reader.is_finished());
    let down = driver_tests::ipv4_udp([10, 66, 0, 1], [10, 66, 0, 2], &[7; 1200]);
    send("tun0", &down);
    assert_eq!(
        reader.join().unwrap(),
        down,
        "RD-1: one packet, byte for byte"
    );
    drop(file);
    m.finish();
}

/// RD-4 through FUSE, errno mapped to Linux; FIONBIO never reaches a FUSE server, so the
/// O_NONBLOCK bit is watched and FIONBIO synthesised: clearing it makes reads block again.
#[test]
fn fuse_nonblocking_read_is_eagain_and_fionbio_follows_the_flag() {
    let m = mount("fuse_nonblocking");
    let file = Arc::new(open(&m.path(1), true).expect("open O_NONBLOCK"));
    let mut buf = [0u8; 2048];
    let e = (&*file).read(&mut buf).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EAGAIN), "Darwin 35 → Linux 11");
    set_nonblock(&file, false);
    let reader = {
        let file = Arc::clone(&file);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 2048];
            let n = (&*file).read(&mut buf).expect("blocking read");
            buf.truncate(n);
            buf
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !reader.is_finished(),
        "FIONBIO(0) reached the driver: the read blocks"
    );
    let p = driver_tests::ipv6_udp([0xfd; 16], [0xfe; 16], b"now blocking");
    send("tun1", &p);
    assert_eq!(reader.join().unwrap(), p);
    set_nonblock(&file, true);
    let e = (&*file).read(&mut buf).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EAGAIN), "FIONBIO(1) again");
    drop(file);
    m.finish();
}

/// SEL-1/SEL-3 through FUSE: poll says writable, not readable, on an empty queue, and a
/// sleeping poll is woken (FUSE notify) when the stack sends.
#[test]
fn fuse_poll_is_notified_when_a_packet_arrives() {
    let m = mount("fuse_poll");
    let file = open(&m.path(0), true).expect("open");
    let poll = |timeout_ms: i32| {
        let mut pfd = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        (rc, pfd.revents)
    };
    assert_eq!(poll(0), (0, 0), "empty queue: not readable");
    let sender = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(200));
        send(
            "tun0",
            &driver_tests::ipv4_udp([10, 66, 0, 1], [10, 66, 0, 2], b"wake"),
        );
    });
    let started = std::time::Instant::now();
    let (rc, revents) = poll(5000);
    sender.join().unwrap();
    assert_eq!(rc, 1);
    assert_ne!(revents & libc::POLLIN, 0);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "woken by notify"
    );
    drop(file);
    m.finish();
}

/// RD-1/RD-3 through FUSE: one read is one packet; a short buffer gets the front of the next
/// packet and the rest is dropped; then the queue is empty.
#[test]
fn fuse_reads_keep_packet_boundaries() {
    let m = mount("fuse_boundaries");
    let file = open(&m.path(0), true).expect("open");
    let a = driver_tests::ipv4_udp([10, 66, 0, 1], [10, 66, 0, 2], &[1; 300]);
    let b = driver_tests::ipv4_udp([10, 66, 0, 1], [10, 66, 0, 2], &[2; 500]);
    send("tun0", &a);
    send("tun0", &b);
    let mut buf = vec![0u8; 65536];
    let n = (&file).read(&mut buf).unwrap();
    assert_eq!(&buf[..n], &a[..]);
    let mut small = [0u8; 10];
    assert_eq!((&file).read(&mut small).unwrap(), 10);
    assert_eq!(&small[..], &b[..10]);
    let e = (&file).read(&mut buf).unwrap_err();
    assert_eq!(
        e.raw_os_error(),
        Some(libc::EAGAIN),
        "the rest of b was dropped"
    );
    drop(file);
    m.finish();
}

/// U-3 through FUSE: the device is exclusive; the second open fails with EBUSY (16 on both).
#[test]
fn fuse_second_open_is_ebusy() {
    let m = mount("fuse_ebusy");
    let first = open(&m.path(0), false).expect("first open");
    let e = open(&m.path(0), false).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBUSY));
    drop(first);
    m.finish();
}

/// IO-2 through FUSE: BSD ioctls sent with the Linux encoding reach the driver with their
/// argument (TUNSIFHEAD in, TUNGIFHEAD out, TUNGIFNAME out); the raw BSD `_IOW` number is seen
/// by Linux as a read-direction ioctl, its input is lost and the driver rejects it (ENOTTY).
#[test]
fn fuse_ioctls_are_remapped_to_bsd() {
    let m = mount("fuse_ioctl");
    const TUNSIFHEAD: u32 = 0x8004_7460;
    const TUNGIFHEAD: u32 = 0x4004_7461;
    const TUNGIFNAME: u32 = 0x4020_745d; // _IOR('t', 93, struct ifreq)
    let file = open(&m.path(1), false).expect("open");
    let ioctl = |cmd: u32, arg: *mut libc::c_void| {
        // SAFETY: arg points at a buffer of the command's size.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), cmd as libc::c_ulong, arg) };
        if rc < 0 {
            Err(std::io::Error::last_os_error().raw_os_error())
        } else {
            Ok(rc)
        }
    };
    let mut name = [0u8; 32];
    ioctl(bsd_to_linux(TUNGIFNAME), name.as_mut_ptr().cast()).expect("TUNGIFNAME");
    assert_eq!(&name[..5], b"tun1\0");
    let mut head: i32 = 0;
    ioctl(bsd_to_linux(TUNGIFHEAD), (&mut head as *mut i32).cast()).expect("TUNGIFHEAD");
    assert_eq!(head, 0, "raw mode at open");
    let mut on: i32 = 1;
    ioctl(bsd_to_linux(TUNSIFHEAD), (&mut on as *mut i32).cast()).expect("TUNSIFHEAD");
    ioctl(bsd_to_linux(TUNGIFHEAD), (&mut head as *mut i32).cast()).expect("TUNGIFHEAD");
    assert_eq!(
        head, 1,
        "the input of _IOW arrived, the output of _IOR came back"
    );
    let mut off: i32 = 0;
    assert_eq!(
        ioctl(TUNSIFHEAD, (&mut off as *mut i32).cast()),
        Err(Some(libc::ENOTTY)),
        "unmapped BSD _IOW: Linux copies out, not in"
    );
    drop(file);
    m.finish();
}

/// Section 17 step 4 of docs/tap-contract.md over FUSE: the tap files are served, and the
/// VTun-like linker joins them with Linux select (FUSE poll and its notifications), read and
/// write on non-blocking descriptors; a frame raw-output on tap0 reaches tap1's `ifnet_input`
/// byte for byte (TO5, TR-1, TW8), and one from tap1 reaches tap0.
#[test]
fn fuse_tap_files_are_linked_by_select_read_write() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tunnel_sim::relay::{link, FilePair, LinkCounters};
    use tunnel_sim::tap_bridge::{configure_sim_tap, sim_mac};
    let m = mount_kind("fuse_tap_link", "tap", Arc::new(configure_sim_tap));
    // Read before the files are opened (the device is exclusive, U-3).
    let macs = [sim_mac(0).expect("tap0 MAC"), sim_mac(1).expect("tap1 MAC")];
    let (tx, rx) = std::sync::mpsc::channel::<(String, Vec<u8>)>();
    for name in ["tap0", "tap1"] {
        let tx = std::sync::Mutex::new(tx.clone());
        netinspect::set_frame_in_hook(
            name,
            Some(Arc::new(move |f: &netinspect::FrameIn| {
                let _ = tx.lock().unwrap().send((name.to_string(), f.bytes.clone()));
            })),
        );
    }
    let pair = Arc::new(FilePair([
        open(&m.path(0), true).expect("open tap0 file"),
        open(&m.path(1), true).expect("open tap1 file"),
    ]));
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(LinkCounters::default());
    let linker = {
        let (pair, stop, counters) = (Arc::clone(&pair), Arc::clone(&stop), Arc::clone(&counters));
        std::thread::spawn(move || link(&*pair, &stop, &counters))
    };
    let mut to1 = macs[1].to_vec();
    to1.extend_from_slice(&macs[0]);
    to1.extend_from_slice(&[0x08, 0x00]);
    to1.extend_from_slice(&[0x45; 46]);
    let mut to0 = macs[0].to_vec();
    to0.extend_from_slice(&macs[1]);
    to0.extend_from_slice(&[0x86, 0xdd]);
    to0.extend_from_slice(&[0x60; 1400]);
    stack::output_raw("tap0", &to1).expect("raw output on tap0");
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).expect("linked"),
        ("tap1".to_string(), to1)
    );
    stack::output_raw("tap1", &to0).expect("raw output on tap1");
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).expect("linked"),
        ("tap0".to_string(), to0)
    );
    stop.store(true, Ordering::SeqCst);
    linker.join().unwrap();
    assert_eq!(
        (
            counters.zero_to_one.load(Ordering::Relaxed),
            counters.one_to_zero.load(Ordering::Relaxed),
            counters.write_errors.load(Ordering::Relaxed),
        ),
        (1, 1, 0)
    );
    netinspect::set_frame_in_hook("tap0", None);
    netinspect::set_frame_in_hook("tap1", None);
    drop(pair);
    m.finish();
}
