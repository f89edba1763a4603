//! ifnet (xnu bsd/net/kpi_interface.h, bsd/net/dlil.c): `ifnet_detach` is asynchronous (it
//! returns before the `detached` callback, which runs on another thread), a detached ifnet is
//! never attached again, `ifnet_input` checks `rcvif` and `pkthdr.len`, and
//! `proto_register_plumber` for a registered pair fails with `EEXIST`.

mod common;
mod ifdrv;

use common::*;
use ifdrv::{attach_inet, proto_register_plumber};
use ifdrv::{ifnet_attach, ifnet_detach, ifnet_detach_protocol, ifnet_release};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use xnu_sim::abi::*;
use xnu_sim::netinspect::{interface, received, IfState};
use xnu_sim::Errno;

extern "C" {
    fn ifnet_input(ifp: ifnet_t, m: mbuf_t, stats: *const ifnet_stat_increment_param) -> errno_t;
    fn mbuf_setnextpkt(m: mbuf_t, next: mbuf_t);
    fn mbuf_pkthdr_setlen(m: mbuf_t, len: usize);
}

/// Let the detached callback finish.
static RELEASE: AtomicBool = AtomicBool::new(false);
static DETACHED: AtomicBool = AtomicBool::new(false);
/// The OS thread the detached callback ran on.
static DETACH_THREAD: Mutex<Option<std::thread::ThreadId>> = Mutex::new(None);

/// Records its thread, then waits for `RELEASE` before it finishes.
unsafe extern "C" fn detached(_ifp: ifnet_t) {
    *DETACH_THREAD.lock().unwrap() = Some(std::thread::current().id());
    wait_until(Duration::from_secs(10), || RELEASE.load(Ordering::SeqCst));
    DETACHED.store(true, Ordering::SeqCst);
}

/// Boots, then allocates and attaches `simif0` (the test driver of ifdrv, with the held
/// detached callback above).
fn attach() -> ifnet_t {
    boot();
    let ifp = ifdrv::attach_with("simif", 0, |p| p.detach = Some(detached));
    assert_eq!(interface("simif0").unwrap().state, IfState::Attached);
    ifp
}

fn state() -> Option<IfState> {
    interface("simif0").map(|i| i.state)
}

#[test]
fn detach_is_asynchronous_and_the_callback_runs_on_another_thread() {
    let ifp = attach();
    RELEASE.store(false, Ordering::SeqCst);
    // SAFETY: an attached ifnet.
    assert_eq!(unsafe { ifnet_detach(ifp) }, 0);
    // ifnet_detach returned while the detached callback has not finished.
    assert!(
        !DETACHED.load(Ordering::SeqCst),
        "ifnet_detach waited for the callback"
    );
    assert!(
        wait_until(Duration::from_secs(5), || DETACH_THREAD
            .lock()
            .unwrap()
            .is_some()),
        "the detached callback never started"
    );
    assert_ne!(
        DETACH_THREAD.lock().unwrap().unwrap(),
        std::thread::current().id(),
        "the detached callback runs on another thread"
    );
    assert!(!DETACHED.load(Ordering::SeqCst));
    RELEASE.store(true, Ordering::SeqCst);
    assert!(wait_until(Duration::from_secs(5), || DETACHED.load(Ordering::SeqCst)));
    assert_eq!(
        state(),
        Some(IfState::Detached),
        "our allocation reference keeps it"
    );
    // SAFETY: the reference from ifnet_allocate.
    assert_eq!(unsafe { ifnet_release(ifp) }, 0);
    assert!(
        wait_until(Duration::from_secs(5), || state().is_none()),
        "freed after release"
    );
    assert_eq!(xnu_sim::leaks().ifnets, 0);
}

#[test]
fn detach_returns_while_detaching() {
    // The state seen right after ifnet_detach returns: still detaching (the callback is held).
    let ifp = attach();
    RELEASE.store(false, Ordering::SeqCst);
    // SAFETY: an attached ifnet.
    assert_eq!(unsafe { ifnet_detach(ifp) }, 0);
    let s = state();
    assert!(
        matches!(s, Some(IfState::Detaching) | Some(IfState::Detached)),
        "{s:?}"
    );
    assert!(!DETACHED.load(Ordering::SeqCst));
    RELEASE.store(true, Ordering::SeqCst);
    assert!(wait_until(Duration::from_secs(5), || DETACHED.load(Ordering::SeqCst)));
    // SAFETY: the allocation reference.
    unsafe { ifnet_release(ifp) };
}

#[test]
fn reattach_after_detach_panics() {
    const NAME: &str = "reattach_after_detach_panics";
    if is_child(NAME) {
        let ifp = attach();
        RELEASE.store(true, Ordering::SeqCst);
        // SAFETY: an attached ifnet; re-attaching it after its detach must panic.
        unsafe {
            assert_eq!(ifnet_detach(ifp), 0);
            assert!(wait_until(Duration::from_secs(5), || DETACHED.load(Ordering::SeqCst)));
            ifnet_attach(ifp, std::ptr::null());
        }
        child_survived();
    }
    expect_kernel_panic(NAME, "a detached ifnet can never be attached again");
}

/// A packet chain of `len` bytes with rcvif = `ifp`.
fn packet(ifp: ifnet_t, len: usize, fill: u8) -> mbuf_t {
    let mut m: mbuf_t = std::ptr::null_mut();
    let data = vec![fill; len];
    // SAFETY: valid out-pointer; a fresh chain of `len` bytes.
    unsafe {
        assert_eq!(
            mbuf_allocpacket(MBUF_WAITOK, len, std::ptr::null_mut(), &mut m),
            0
        );
        assert_eq!(
            mbuf_copyback(m, 0, len, data.as_ptr().cast(), MBUF_WAITOK),
            0
        );
        if !ifp.is_null() {
            mbuf_pkthdr_setrcvif(m, ifp);
        }
    }
    m
}

#[test]
fn ifnet_input_delivers_a_nextpkt_list() {
    let ifp = attach();
    attach_inet(ifp);
    let (a, b) = (packet(ifp, 60, 1), packet(ifp, 3000, 2));
    // SAFETY: live packets; the list is handed to the stack.
    unsafe {
        mbuf_setnextpkt(a, b);
        assert_eq!(ifnet_input(ifp, a, std::ptr::null()), 0);
    }
    assert_eq!(ifdrv::demuxed(), 2, "demux once per packet");
    assert_eq!(
        received("simif0"),
        vec![(AF_INET, vec![1; 60]), (AF_INET, vec![2; 3000])]
    );
    assert_eq!(xnu_sim::leaks().mbufs, 0, "the stack consumed both");
    // SAFETY: attached ifnet with AF_INET.
    assert_eq!(unsafe { ifnet_detach_protocol(ifp, AF_INET) }, 0);
}

#[test]
fn ifnet_input_checks_rcvif() {
    const NAME: &str = "ifnet_input_checks_rcvif";
    if is_child(NAME) {
        let ifp = attach();
        attach_inet(ifp);
        let m = packet(std::ptr::null_mut(), 40, 0);
        // SAFETY: a live packet without rcvif: must panic.
        unsafe { ifnet_input(ifp, m, std::ptr::null()) };
        child_survived();
    }
    expect_kernel_panic(NAME, "pkthdr.rcvif is not the interface");
}

#[test]
fn ifnet_input_checks_pkthdr_len() {
    const NAME: &str = "ifnet_input_checks_pkthdr_len";
    if is_child(NAME) {
        let ifp = attach();
        attach_inet(ifp);
        let m = packet(ifp, 40, 0);
        // SAFETY: a live packet whose pkthdr.len disagrees with its m_len sum: must panic.
        unsafe {
            mbuf_pkthdr_setlen(m, 41);
            ifnet_input(ifp, m, std::ptr::null());
        }
        child_survived();
    }
    expect_kernel_panic(NAME, "pkthdr.len 41 != sum of m_len 40");
}

#[test]
fn proto_register_plumber_twice_is_eexist() {
    boot();
    // SAFETY: plain KPI calls (no callbacks are invoked by registration).
    unsafe {
        let plumb = |pf| proto_register_plumber(pf, IFNET_FAMILY_TUN, None, None);
        assert_eq!(plumb(AF_INET), 0);
        assert_eq!(
            Errno(plumb(AF_INET)),
            Errno::EEXIST,
            "an already-registered pair"
        );
        assert_eq!(
            plumb(AF_INET6),
            0,
            "another protocol family is another pair"
        );
        assert_eq!(
            proto_register_plumber(AF_INET, IFNET_FAMILY_TUN + 1, None, None),
            0,
            "another interface family is another pair"
        );
    }
    // Another kext (a second tun driver) got there first.
    xnu_sim::netinspect::register_foreign_plumber(AF_INET, 99);
    // SAFETY: as above.
    let rc = unsafe { proto_register_plumber(AF_INET, 99, None, None) };
    assert_eq!(rc, 17, "EEXIST (17)");
}

/// Raw output (bsd/net/dlil.c `dlil_output` with `DLIL_OUTPUT_FLAGS_RAW`, as bsd/net/bpf.c
/// `bpfwrite` makes for a complete header) skips pre-output and the framer: the bytes reach
/// the driver's output as written. A BPF write without a complete header goes through
/// `PF_INET` (`ENXIO` while IPv4 is not attached).
#[test]
fn raw_output_skips_the_framer() {
    let _ifp = attach();
    let frame = [2u8, 0, 0, 0, 0x45, 0, 0, 20];
    xnu_sim::stack::output_raw("simif0", &frame).unwrap();
    assert_eq!(ifdrv::outputs(), vec![frame.to_vec()], "as written");
    assert_eq!(
        xnu_sim::stack::bpf_write("simif0", &frame[4..]),
        Err(Errno::ENXIO),
        "PF_INET is not attached"
    );
    attach_inet(_ifp);
    xnu_sim::stack::bpf_write("simif0", &frame[4..]).unwrap();
    assert_eq!(ifdrv::outputs().len(), 2, "through PF_INET to output");
}
