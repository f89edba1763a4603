//! The frame-level view of Ethernet interfaces (docs/tap-contract.md section 17) and the
//! layout `ifnet_input` demands of them (contract TW-2; xnu bsd/net/dlil.c `ifnet_input`,
//! bsd/net/ether_if_module.c `ether_demux`, which reads the header and up to 8 payload bytes
//! unchecked): a frame whose header is not the 14 bytes right before the data of the first
//! mbuf, or whose first mbuf lacks the bytes demux reads, panics; every frame given to
//! `ifnet_input` and every frame the driver's output accepted reaches the recorder or a hook.

mod common;
mod ifdrv;

use common::*;
use ifdrv::ether::{self, mac};
use std::sync::{Arc, Mutex};
use xnu_sim::abi::*;
use xnu_sim::netinspect::{
    frames_out, set_frame_in_hook, set_frame_out_hook, take_frames_in, FrameIn, M_BCAST,
};
use xnu_sim::{stack, Errno};

const NAME: &str = "frtest0";
const PEER: [u8; 6] = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee];

fn tap() -> ifnet_t {
    boot();
    ether::attach("frtest", 0)
}

#[test]
fn ifnet_input_panics_when_the_header_is_not_right_before_the_data() {
    const TEST: &str = "ifnet_input_panics_when_the_header_is_not_right_before_the_data";
    if is_child(TEST) {
        let ifp = tap();
        let frame = ether::frame(mac(0), PEER, 0x0800, &[0x45; 46]);
        let m = ether::frame_packet(ifp, &frame);
        let mut elsewhere = [0u8; 14];
        elsewhere.copy_from_slice(&frame[..14]);
        // SAFETY: a live packet given a header outside its storage: ifnet_input must panic.
        unsafe {
            ether::mbuf_pkthdr_setheader(m, elsewhere.as_mut_ptr().cast());
            ether::ifnet_input(ifp, m, std::ptr::null());
        }
        child_survived();
    }
    expect_kernel_panic(TEST, "is not the 14 bytes right before the data");
}

#[test]
fn ifnet_input_panics_when_the_first_mbuf_lacks_the_bytes_demux_reads() {
    const TEST: &str = "ifnet_input_panics_when_the_first_mbuf_lacks_the_bytes_demux_reads";
    if is_child(TEST) {
        let ifp = tap();
        let frame = ether::frame(mac(0), PEER, 0x0800, &[0x45; 100]);
        let mut m: mbuf_t = std::ptr::null_mut();
        let mut max = 2u32;
        // SAFETY: a two-segment chain (96 + 224 bytes): 18 bytes (header and 4 payload bytes)
        // in the first, the rest in the second.
        unsafe {
            assert_eq!(
                ether::mbuf_allocpacket(MBUF_WAITOK, 200, &mut max, &mut m),
                0
            );
            let first = ether::mbuf_data(m).cast::<u8>();
            std::ptr::copy_nonoverlapping(frame.as_ptr(), first, 18);
            ether::mbuf_setlen(m, 18);
            let second = ether::mbuf_next(m);
            std::ptr::copy_nonoverlapping(
                frame[18..].as_ptr(),
                ether::mbuf_data(second).cast(),
                96,
            );
            ether::mbuf_setlen(second, 96);
            ether::mbuf_pkthdr_setlen(m, frame.len());
            ether::mbuf_pkthdr_setrcvif(m, ifp);
            ether::mbuf_pkthdr_setheader(m, ether::mbuf_data(m));
            ether::mbuf_adj(m, 14);
            ether::ifnet_input(ifp, m, std::ptr::null());
        }
        child_survived();
    }
    expect_kernel_panic(
        TEST,
        "the first mbuf holds 4 payload bytes, ether_demux reads 8",
    );
}

#[test]
fn frames_reach_the_recorder_or_the_hooks() {
    let ifp = tap();
    stack::add_address(NAME, AF_INET, &[10, 99, 0, 1]).unwrap();
    let broadcast = ether::frame([0xff; 6], PEER, 0x0806, &[0; 28]);
    ether::input(ifp, &broadcast);
    assert_eq!(
        take_frames_in(NAME),
        vec![FrameIn {
            bytes: broadcast.clone(),
            demux: Ok(AF_INET),
            flags: M_BCAST
        }]
    );
    let gratuitous = frames_out(NAME);
    assert_eq!(
        gratuitous.len(),
        1,
        "the address's announcement was accepted"
    );
    assert_eq!(gratuitous[0][12..14], [0x08, 0x06]);

    let seen_in: Arc<Mutex<Vec<FrameIn>>> = Arc::default();
    let seen_out: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let (i, o) = (seen_in.clone(), seen_out.clone());
    set_frame_in_hook(
        NAME,
        Some(Arc::new(move |f: &FrameIn| {
            i.lock().unwrap().push(f.clone())
        })),
    );
    set_frame_out_hook(
        NAME,
        Some(Arc::new(move |b: &[u8]| o.lock().unwrap().push(b.to_vec()))),
    );
    let unknown = ether::frame(mac(0), PEER, 0x88b5, &[1; 46]);
    ether::input(ifp, &unknown);
    stack::output_raw(NAME, &unknown).unwrap();
    assert_eq!(
        *seen_in.lock().unwrap(),
        vec![FrameIn {
            bytes: unknown.clone(),
            demux: Err(Errno::ENOENT),
            flags: 0
        }]
    );
    assert_eq!(*seen_out.lock().unwrap(), vec![unknown]);
    assert!(
        take_frames_in(NAME).is_empty(),
        "a hook replaces the recorder"
    );
    assert_eq!(frames_out(NAME).len(), 1);
}
