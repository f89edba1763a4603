//! An Ethernet variant of the test driver (docs/tap-contract.md TU-4): XNU's own `ether_*`
//! functions as demux, add_proto, del_proto, check_multi and framer, a broadcast address, a
//! `sockaddr_dl` at attach, and an ioctl that behaves as the contract's tap units do (address
//! commands set `IFF_UP|IFF_RUNNING`, `IFF_RUNNING` follows `IFF_UP` on `SIOCSIFFLAGS`,
//! `SIOCSIFLLADDR` calls `ifnet_set_lladdr`, media and device MTU answered), with scripted
//! errors. Frames are built with contract TW-2's layout and given to `ifnet_input`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::ffi::{c_char, c_ulong, c_void};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use xnu_sim::abi::*;

extern "C" {
    pub fn ether_demux(ifp: ifnet_t, m: mbuf_t, header: *mut c_char, pf: *mut u32) -> errno_t;
    pub fn ether_add_proto(
        ifp: ifnet_t,
        pf: u32,
        list: *const ifnet_demux_desc,
        count: u32,
    ) -> errno_t;
    pub fn ether_del_proto(ifp: ifnet_t, pf: u32) -> errno_t;
    pub fn ether_check_multi(ifp: ifnet_t, sa: *const sockaddr) -> errno_t;
    pub fn ether_frameout(
        ifp: ifnet_t,
        m: *mut mbuf_t,
        dest: *const sockaddr,
        edst: *const c_char,
        ether_type: *const c_char,
    ) -> errno_t;
    pub fn ifnet_set_lladdr(ifp: ifnet_t, lladdr: *const c_void, len: usize) -> errno_t;
    pub fn ifnet_lladdr_copy_bytes(ifp: ifnet_t, out: *mut c_void, len: usize) -> errno_t;
    pub fn ifnet_set_hdrlen(ifp: ifnet_t, hdrlen: u8) -> errno_t;
    pub fn ifnet_event(ifp: ifnet_t, event: *mut kern_event_msg) -> errno_t;
    pub fn ifnet_set_flags(ifp: ifnet_t, flags: u16, mask: u16) -> errno_t;
    pub fn ifnet_flags(ifp: ifnet_t) -> u16;
    pub fn ifnet_mtu(ifp: ifnet_t) -> u32;
    pub fn ifnet_set_mtu(ifp: ifnet_t, mtu: u32) -> errno_t;
    pub fn ifnet_input(
        ifp: ifnet_t,
        m: mbuf_t,
        stats: *const ifnet_stat_increment_param,
    ) -> errno_t;
    pub fn uuid_generate_random(out: *mut u8);
    pub fn mbuf_allocpacket(
        how: mbuf_how_t,
        len: usize,
        max: *mut u32,
        out: *mut mbuf_t,
    ) -> errno_t;
    pub fn mbuf_maxlen(m: mbuf_t) -> usize;
    pub fn mbuf_setlen(m: mbuf_t, len: usize);
    pub fn mbuf_next(m: mbuf_t) -> mbuf_t;
    pub fn mbuf_data(m: mbuf_t) -> *mut c_void;
    pub fn mbuf_adj(m: mbuf_t, len: i32);
    pub fn mbuf_pkthdr_setlen(m: mbuf_t, len: usize);
    pub fn mbuf_pkthdr_setrcvif(m: mbuf_t, ifp: ifnet_t) -> errno_t;
    pub fn mbuf_pkthdr_setheader(m: mbuf_t, header: *mut c_void);
    pub fn mbuf_pkthdr_header(m: mbuf_t) -> *mut c_void;
}

/// `SIOCSIFLLADDR`.
pub const SIOCSIFLLADDR: u32 = 0x8020_693c;
/// `SIOCGIFMEDIA64`.
pub const SIOCGIFMEDIA64: u32 = 0xc02c_6938;
/// `SIOCGIFDEVMTU`.
pub const SIOCGIFDEVMTU: u32 = 0xc020_6944;
/// `SIOCSIFFLAGS`.
pub const SIOCSIFFLAGS: u32 = 0x8020_6910;
/// The creation flags of a tap unit: `IFF_BROADCAST|IFF_SIMPLEX|IFF_MULTICAST`.
pub const TAP_FLAGS: u16 = 0x8802;
/// `IFM_ETHER|IFM_1000_T|IFM_FDX`.
pub const MEDIA: i32 = 0x0010_0030;

static BROADCAST: [u8; 6] = [0xff; 6];
/// Scripted ioctl answers (instead of the default behaviour), by command.
static IOCTL_RC: Mutex<Option<HashMap<u32, errno_t>>> = Mutex::new(None);
/// The media the driver reports as active (`IFM_ACTIVE`).
static LINK_UP: AtomicBool = AtomicBool::new(true);
/// Calls of the counting framer.
static FRAMED: AtomicU64 = AtomicU64::new(0);

/// The MAC of unit `unit`: a locally administered unicast address ending in the unit.
pub fn mac(unit: u32) -> [u8; 6] {
    [0x02, 0x11, 0x22, 0x33, 0x44, unit as u8]
}

/// Makes the driver's ioctl answer `rc` for `cmd` (`None`: the default behaviour again).
pub fn script_ioctl(cmd: u32, rc: Option<errno_t>) {
    let mut g = IOCTL_RC.lock().unwrap();
    let map = g.get_or_insert_with(HashMap::new);
    match rc {
        Some(rc) => map.insert(cmd, rc),
        None => map.remove(&cmd),
    };
}

/// Whether the driver reports its link active in `SIOCGIFMEDIA64`.
pub fn set_link_up(up: bool) {
    LINK_UP.store(up, Ordering::SeqCst);
}

/// How many times the counting framer ran.
pub fn framed() -> u64 {
    FRAMED.load(Ordering::SeqCst)
}

/// A framer that counts its calls, then is `ether_frameout` (to tell framed from raw output).
pub unsafe extern "C" fn counting_framer(
    ifp: ifnet_t,
    m: *mut mbuf_t,
    dest: *const sockaddr,
    edst: *const c_char,
    ether_type: *const c_char,
) -> errno_t {
    FRAMED.fetch_add(1, Ordering::SeqCst);
    // SAFETY: the stack's arguments, passed on unchanged.
    unsafe { ether_frameout(ifp, m, dest, edst, ether_type) }
}

/// The tap-like interface ioctl.
unsafe extern "C" fn ioctl(ifp: ifnet_t, cmd: c_ulong, data: *mut c_void) -> errno_t {
    let cmd = cmd as u32;
    super::IOCTLS.lock().unwrap().push((cmd, data.is_null()));
    if let Some(&rc) = IOCTL_RC.lock().unwrap().as_ref().and_then(|m| m.get(&cmd)) {
        return rc;
    }
    let up_running = IFF_UP | IFF_RUNNING;
    // SAFETY: KPI calls with the live ifnet the stack passed; `data` is the command's
    // argument buffer (an ifreq or ifmediareq64) where the command has one.
    unsafe {
        match cmd {
            0x8020_690c | 0x8040_691a | 0x8020_690e => {
                ifnet_set_flags(ifp, up_running, up_running);
                0
            }
            SIOCSIFFLAGS => {
                let running = if ifnet_flags(ifp) & IFF_UP != 0 {
                    IFF_RUNNING
                } else {
                    0
                };
                ifnet_set_flags(ifp, running, IFF_RUNNING);
                0
            }
            SIOCSIFLLADDR => {
                let ifr = data.cast::<u8>();
                ifnet_set_lladdr(ifp, ifr.add(18).cast(), usize::from(*ifr.add(16)))
            }
            SIOCGIFMEDIA64 => {
                let words = data.cast::<u8>().add(16).cast::<i32>();
                let status = if LINK_UP.load(Ordering::SeqCst) { 3 } else { 1 };
                for (k, v) in [MEDIA, 0, status, MEDIA, 1].into_iter().enumerate() {
                    words.add(k).write_unaligned(v);
                }
                0
            }
            SIOCGIFDEVMTU => {
                let words = data.cast::<u8>().add(16).cast::<i32>();
                let mtu = ifnet_mtu(ifp) as i32;
                for (k, v) in [mtu, 72, 65517].into_iter().enumerate() {
                    words.add(k).write_unaligned(v);
                }
                0
            }
            0x8020_6931 | 0x8020_6932 | 0x8020_6919 => 0,
            _ => xnu_sim::Errno::EOPNOTSUPP.0,
        }
    }
}

/// Allocates and attaches `<base><unit>` as a tap unit does (TU-4), with `adjust` applied to
/// the init parameters: Ethernet family and type, XNU's `ether_*` callbacks, the broadcast
/// address; MTU 1500, header length 14, flags 0x8802; a `sockaddr_dl` with `mac(unit)`.
pub fn attach_with(base: &str, unit: u32, adjust: impl FnOnce(&mut ifnet_init_params)) -> ifnet_t {
    let ifp = super::allocate_with(base, unit, std::ptr::null_mut(), |p| {
        p.family = IFNET_FAMILY_ETHERNET;
        p.type_ = IFT_ETHER;
        p.demux = Some(ether_demux);
        p.add_proto = Some(ether_add_proto);
        p.del_proto = Some(ether_del_proto);
        p.check_multi = Some(ether_check_multi);
        p.framer = Some(ether_frameout);
        p.ioctl = Some(ioctl);
        p.broadcast_addr = BROADCAST.as_ptr().cast();
        p.broadcast_len = 6;
        adjust(p);
    });
    let mut sdl = sockaddr_dl {
        sdl_len: 20,
        sdl_family: AF_LINK as u8,
        sdl_alen: 6,
        ..Default::default()
    };
    for (k, b) in mac(unit).into_iter().enumerate() {
        sdl.sdl_data[k] = b as c_char;
    }
    // SAFETY: an allocated ifnet and a valid sockaddr_dl.
    unsafe {
        assert_eq!(ifnet_set_mtu(ifp, 1500), 0);
        assert_eq!(ifnet_set_hdrlen(ifp, 14), 0);
        assert_eq!(ifnet_set_flags(ifp, TAP_FLAGS, 0xffff), 0);
        assert_eq!(
            super::ifnet_attach(ifp, (&sdl as *const sockaddr_dl).cast()),
            0
        );
    }
    ifp
}

/// Allocates and attaches `<base><unit>` as a tap unit.
pub fn attach(base: &str, unit: u32) -> ifnet_t {
    attach_with(base, unit, |_| {})
}

/// A packet holding `frame` as a tap unit's write builds it (contract TW-2): every segment
/// filled to its capacity, the frame header the 14 bytes right before the data, `pkthdr.len`
/// the payload length, `rcvif` the interface.
pub fn frame_packet(ifp: ifnet_t, frame: &[u8]) -> mbuf_t {
    assert!(frame.len() >= 14);
    let mut m: mbuf_t = std::ptr::null_mut();
    // SAFETY: KPI calls on a fresh chain of `frame.len()` bytes, each segment written within
    // its capacity (`mbuf_maxlen`).
    unsafe {
        assert_eq!(
            mbuf_allocpacket(MBUF_WAITOK, frame.len(), std::ptr::null_mut(), &mut m),
            0
        );
        fill(m, frame);
        mbuf_pkthdr_setrcvif(m, ifp);
        mbuf_pkthdr_setheader(m, mbuf_data(m));
        mbuf_adj(m, 14);
    }
    m
}

/// Copies `bytes` over the segments of the fresh chain `m` and sets every length.
///
/// # Safety
/// `m` is a live chain whose capacities add up to at least `bytes.len()`.
pub unsafe fn fill(m: mbuf_t, bytes: &[u8]) {
    let mut at = 0;
    let mut seg = m;
    // SAFETY: the caller's contract; each copy stays within the segment's capacity.
    unsafe {
        while !seg.is_null() {
            let n = mbuf_maxlen(seg).min(bytes.len() - at);
            std::ptr::copy_nonoverlapping(bytes[at..].as_ptr(), mbuf_data(seg).cast(), n);
            mbuf_setlen(seg, n);
            at += n;
            seg = mbuf_next(seg);
        }
        mbuf_pkthdr_setlen(m, bytes.len());
    }
    assert_eq!(at, bytes.len(), "the chain holds the whole frame");
}

/// Gives `frame` to `ifnet_input` on `ifp`, as a tap write does (TW-3: stats {1, len}).
pub fn input(ifp: ifnet_t, frame: &[u8]) -> errno_t {
    let m = frame_packet(ifp, frame);
    let stats = ifnet_stat_increment_param {
        packets_in: 1,
        bytes_in: frame.len() as u32,
        ..Default::default()
    };
    // SAFETY: a live packet with the interface as rcvif.
    unsafe { ifnet_input(ifp, m, &stats) }
}

/// An Ethernet frame: destination, source, type, payload.
pub fn frame(dst: [u8; 6], src: [u8; 6], ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Posts a link event with the interface's `net_event_data` (TK-1: `total_size` 48, as
/// if_fake.c `interface_link_event` builds it).
pub fn link_event(ifp: ifnet_t, base: &str, unit: u32, code: u32) -> errno_t {
    let mut msg = [0u32; 12];
    msg[0] = 48;
    msg[1] = KEV_VENDOR_APPLE;
    msg[2] = KEV_NETWORK_CLASS;
    msg[3] = KEV_DL_SUBCLASS;
    msg[5] = code;
    msg[6] = IFNET_FAMILY_ETHERNET;
    msg[7] = unit;
    let mut name = [0u8; 16];
    name[..base.len()].copy_from_slice(base.as_bytes());
    for k in 0..4 {
        msg[8 + k] = u32::from_ne_bytes(name[4 * k..4 * k + 4].try_into().unwrap());
    }
    // SAFETY: a 48-byte kern_event_msg with its net_event_data.
    unsafe { ifnet_event(ifp, msg.as_mut_ptr().cast()) }
}
