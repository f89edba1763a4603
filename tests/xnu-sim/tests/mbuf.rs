//! mbuf chain invariants (xnu bsd/sys/kpi_mbuf.h, bsd/kern/kpi_mbuf.c) under the strict
//! configuration: random fragmentation with sum(m_len) = pkthdr.len, prepend giving a new head
//! that keeps the packet header, adj, copydata/copyback across segments, poisoning and stale
//! handles, and fault injection on MBUF_DONTWAIT.

mod common;

use common::*;
use std::ffi::c_void;
use xnu_sim::abi::{ifnet_t, mbuf_how_t, mbuf_t, MBUF_DONTWAIT, MBUF_WAITOK};
use xnu_sim::config::{fail_nth, faults_fired, Fault};
use xnu_sim::Errno;

extern "C" {
    fn mbuf_prepend(m: *mut mbuf_t, len: usize, how: mbuf_how_t) -> i32;
    fn mbuf_adj(m: mbuf_t, len: i32);
    fn mbuf_maxlen(m: mbuf_t) -> usize;
    fn mbuf_setlen(m: mbuf_t, len: usize);
    fn mbuf_pkthdr_setlen(m: mbuf_t, len: usize);
    fn mbuf_tag_id_find(string: *const std::ffi::c_char, id: *mut u32) -> i32;
    fn mbuf_tag_allocate(
        m: mbuf_t,
        id: u32,
        kind: u16,
        len: usize,
        how: mbuf_how_t,
        data: *mut *mut c_void,
    ) -> i32;
    fn mbuf_tag_find(m: mbuf_t, id: u32, kind: u16, len: *mut usize, data: *mut *mut c_void)
        -> i32;
}

fn alloc(how: mbuf_how_t, len: usize) -> Result<mbuf_t, Errno> {
    let mut m: mbuf_t = std::ptr::null_mut();
    // SAFETY: valid out-pointer.
    let rc = unsafe { mbuf_allocpacket(how, len, std::ptr::null_mut(), &mut m) };
    if rc == 0 {
        assert!(!m.is_null());
        Ok(m)
    } else {
        Err(Errno(rc))
    }
}

/// The packet's bytes, read with mbuf_copydata.
fn bytes(m: mbuf_t, off: usize, len: usize) -> Result<Vec<u8>, Errno> {
    let mut out = vec![0u8; len];
    // SAFETY: a live chain; `out` has `len` bytes.
    let rc = unsafe { mbuf_copydata(m, off, len, out.as_mut_ptr().cast()) };
    if rc == 0 {
        Ok(out)
    } else {
        Err(Errno(rc))
    }
}

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect()
}

/// Fills a fresh chain as Apple's own callers do: each segment up to `mbuf_maxlen`, then
/// `mbuf_setlen` per segment and `mbuf_pkthdr_setlen`.
fn fill(m: mbuf_t, data: &[u8]) {
    let mut at = 0;
    let mut cur = m;
    while !cur.is_null() {
        // SAFETY: a live segment of our chain, `mbuf_maxlen` bytes of storage at mbuf_data.
        unsafe {
            let n = mbuf_maxlen(cur).min(data.len() - at);
            std::ptr::copy_nonoverlapping(data[at..].as_ptr(), mbuf_data(cur).cast::<u8>(), n);
            mbuf_setlen(cur, n);
            at += n;
            cur = mbuf_next(cur);
        }
    }
    assert_eq!(at, data.len(), "the chain holds the packet");
    // SAFETY: a live packet header mbuf.
    unsafe { mbuf_pkthdr_setlen(m, data.len()) };
}

/// XNU's `m_allocpacket_internal` (bsd/kern/uipc_mbuf.c) initialises every mbuf with
/// `MBUF_INIT`, which sets `m_len` 0, and leaves `pkthdr.len` 0: the caller sets both.
#[test]
fn allocpacket_returns_segments_of_length_zero() {
    boot();
    let mut multi = 0;
    for (i, &n) in [1usize, 2, 14, 100, 300, 1500, 4096, 9000, 20_000, 65_535]
        .iter()
        .enumerate()
    {
        for _ in 0..5 {
            let how = if i % 2 == 0 {
                MBUF_WAITOK
            } else {
                MBUF_DONTWAIT
            };
            let m = alloc(how, n).unwrap();
            let segs = segment_lengths(m);
            assert!(
                segs.iter().all(|&l| l == 0),
                "m_len is 0 everywhere: {segs:?}"
            );
            // SAFETY: a live packet-header mbuf.
            assert_eq!(unsafe { mbuf_pkthdr_len(m) }, 0, "pkthdr.len is 0");
            multi += usize::from(segs.len() > 1);
            let data = pattern(n, n as u8);
            fill(m, &data);
            assert_eq!(segment_lengths(m).iter().sum::<usize>(), n);
            assert_eq!(bytes(m, 0, n).unwrap(), data);
            // SAFETY: our chain.
            unsafe { mbuf_freem(m) };
        }
    }
    assert!(
        multi >= 10,
        "strict mode fragments allocations: only {multi} chains of several segments"
    );
    assert_eq!(
        alloc(MBUF_WAITOK, 0),
        Err(Errno::EINVAL),
        "packetlen 0 (kpi_mbuf.c)"
    );
    // maxchunks: the number of segments comes back; too few allowed → ENOBUFS.
    let mut chunks = 0u32;
    let mut m: mbuf_t = std::ptr::null_mut();
    // SAFETY: valid pointers.
    unsafe {
        assert_eq!(
            mbuf_allocpacket(MBUF_WAITOK, 40_000, &mut chunks, &mut m),
            0
        );
        assert_eq!(chunks as usize, segment_lengths(m).len());
        assert!(
            chunks >= 3,
            "40000 bytes need at least 3 segments of at most 16 KiB"
        );
        mbuf_freem(m);
        let mut one = 1u32;
        assert_eq!(
            Errno(mbuf_allocpacket(MBUF_WAITOK, 40_000, &mut one, &mut m)),
            Errno::ENOBUFS,
            "more segments than *maxchunks"
        );
    }
    assert_eq!(xnu_sim::leaks().mbufs, 0);
}

/// `mbuf_maxlen` (bsd/kern/kpi_mbuf.c) is each segment's storage size. With one segment
/// allowed, XNU gives a packet of up to 2 KiB one mbuf (`MHLEN`) or one 2 KiB cluster, so a
/// 1500-byte packet plus a 4-byte header fits in one segment.
#[test]
fn maxlen_is_the_capacity_of_each_segment() {
    use xnu_sim::mbuf::{xnu_segment_capacities, MCLBYTES, MHLEN, MLEN};
    boot();
    assert_eq!(xnu_segment_capacities(60, 0), Ok(vec![MHLEN]));
    assert_eq!(xnu_segment_capacities(MHLEN + 1, 0), Ok(vec![MHLEN, MLEN]));
    assert_eq!(xnu_segment_capacities(MHLEN + 1, 1), Ok(vec![MCLBYTES]));
    assert_eq!(xnu_segment_capacities(1504, 1), Ok(vec![MCLBYTES]));
    assert_eq!(xnu_segment_capacities(5000, 1), Ok(vec![16384]));
    assert_eq!(xnu_segment_capacities(40_000, 1), Err(3));
    assert_eq!(xnu_segment_capacities(9000, 0), Ok(vec![16384]));
    assert_eq!(
        xnu_segment_capacities(40_000, 0),
        Ok(vec![16384, 16384, 16384])
    );
    assert_eq!(
        xnu_segment_capacities(33_000, 0),
        Ok(vec![16384, 16384, 2048])
    );
    for n in [1usize, 50, MHLEN + 1, 1000, 1504, 2048] {
        let mut one = 1u32;
        let mut m: mbuf_t = std::ptr::null_mut();
        // SAFETY: valid pointers; the chain is ours afterwards.
        unsafe {
            assert_eq!(mbuf_allocpacket(MBUF_DONTWAIT, n, &mut one, &mut m), 0);
            assert_eq!(one, 1, "{n} bytes in one segment");
            assert!(mbuf_maxlen(m) >= n, "room for {n} bytes");
            assert!(mbuf_next(m).is_null());
            mbuf_freem(m);
        }
    }
    // Unlimited, fragmented (strict): the capacities add up to the packet exactly.
    for n in [700usize, 3000, 20_000] {
        let m = alloc(MBUF_WAITOK, n).unwrap();
        let mut total = 0;
        let mut cur = m;
        while !cur.is_null() {
            // SAFETY: live segments of our chain.
            unsafe {
                total += mbuf_maxlen(cur);
                cur = mbuf_next(cur);
            }
        }
        assert_eq!(total, n);
        // SAFETY: our chain.
        unsafe { mbuf_freem(m) };
    }
}

/// `mbuf_tag_id_find`, `mbuf_tag_allocate`, `mbuf_tag_find` (bsd/kern/kpi_mbuf.c): a stable id
/// per string; one tag per (id, type) on a packet header mbuf (`EEXIST` for a second); found
/// again by (id, type); moved with the packet header by a prepend and freed with the packet.
#[test]
fn tags_are_found_by_id_and_type_and_freed_with_the_packet() {
    boot();
    let (mut id, mut again, mut other) = (0u32, 0u32, 0u32);
    // SAFETY: NUL-terminated strings and valid out-pointers.
    unsafe {
        assert_eq!(mbuf_tag_id_find(c"org.example.a".as_ptr(), &mut id), 0);
        assert_eq!(mbuf_tag_id_find(c"org.example.a".as_ptr(), &mut again), 0);
        assert_eq!(mbuf_tag_id_find(c"org.example.b".as_ptr(), &mut other), 0);
    }
    assert_eq!(id, again, "the same string, the same id");
    assert_ne!(id, other);
    let mut m = alloc(MBUF_WAITOK, 100).unwrap();
    let mut data: *mut c_void = std::ptr::null_mut();
    // SAFETY: a live packet header mbuf; `data` receives 16 writable bytes.
    unsafe {
        assert_eq!(mbuf_tag_allocate(m, id, 1, 16, MBUF_WAITOK, &mut data), 0);
        std::ptr::write_bytes(data.cast::<u8>(), 0x5A, 16);
        let mut dup: *mut c_void = std::ptr::null_mut();
        assert_eq!(
            Errno(mbuf_tag_allocate(m, id, 1, 8, MBUF_WAITOK, &mut dup)),
            Errno::EEXIST
        );
        assert_eq!(mbuf_tag_allocate(m, id, 2, 8, MBUF_WAITOK, &mut dup), 0);
        assert_eq!(
            Errno(mbuf_tag_allocate(m, 999, 1, 8, MBUF_WAITOK, &mut dup)),
            Errno::EINVAL,
            "an id never handed out"
        );
        assert_eq!(
            Errno(mbuf_tag_allocate(m, id, 3, 0, MBUF_WAITOK, &mut dup)),
            Errno::EINVAL,
            "length 0"
        );
    }
    // A prepend under strict heads moves the packet header, tags included.
    // SAFETY: our chain; the head may change.
    assert_eq!(unsafe { mbuf_prepend(&mut m, 4, MBUF_WAITOK) }, 0);
    let (mut len, mut found): (usize, *mut c_void) = (0, std::ptr::null_mut());
    // SAFETY: valid out-pointers; the tag data lives as long as the packet.
    unsafe {
        assert_eq!(mbuf_tag_find(m, id, 1, &mut len, &mut found), 0);
        assert_eq!((len, found), (16, data));
        assert_eq!(*found.cast::<u8>().add(15), 0x5A);
        assert_eq!(
            Errno(mbuf_tag_find(m, other, 1, &mut len, &mut found)),
            Errno::ENOENT
        );
    }
    assert_eq!(xnu_sim::mbuf::tag_count(m), 2);
    // SAFETY: our chain.
    unsafe { mbuf_freem(m) };
    assert_eq!(xnu_sim::leaks().mbufs, 0);
}

#[test]
fn copyback_and_copydata_across_segments() {
    boot();
    for n in [3000usize, 9000, 33_000] {
        let m = alloc(MBUF_WAITOK, n).unwrap();
        let data = pattern(n, n as u8);
        // SAFETY: a live chain of n bytes.
        let rc = unsafe { mbuf_copyback(m, 0, n, data.as_ptr().cast(), MBUF_WAITOK) };
        assert_eq!(rc, 0);
        assert_eq!(bytes(m, 0, n).unwrap(), data);
        // Windows that straddle segment boundaries.
        let mut boundary = 0;
        for len in segment_lengths(m) {
            boundary += len;
            if boundary >= n {
                break;
            }
            let lo = boundary.saturating_sub(7);
            let hi = (boundary + 9).min(n);
            assert_eq!(
                bytes(m, lo, hi - lo).unwrap(),
                data[lo..hi],
                "across {boundary}"
            );
        }
        // copyback in the middle, across boundaries.
        let patch = pattern(1777, 0x40);
        let at = n / 3;
        // SAFETY: in bounds.
        let rc = unsafe { mbuf_copyback(m, at, patch.len(), patch.as_ptr().cast(), MBUF_WAITOK) };
        assert_eq!(rc, 0);
        let mut want = data.clone();
        want[at..at + patch.len()].copy_from_slice(&patch);
        assert_eq!(bytes(m, 0, n).unwrap(), want);
        // Past the end: EINVAL, nothing copied.
        assert_eq!(bytes(m, n - 10, 11), Err(Errno::EINVAL));
        // SAFETY: our chain.
        unsafe { mbuf_freem(m) };
    }
}

#[test]
fn prepend_under_strict_gives_a_new_head_and_keeps_the_pkthdr() {
    boot();
    let n = 1200;
    let mut m = alloc(MBUF_WAITOK, n).unwrap();
    let data = pattern(n, 5);
    // SAFETY: live chain; in bounds.
    unsafe {
        assert_eq!(mbuf_copyback(m, 0, n, data.as_ptr().cast(), MBUF_WAITOK), 0);
        mbuf_pkthdr_setrcvif(m, 0x1000 as ifnet_t);
    }
    let old = m;
    // SAFETY: `m` is our chain; the head may change.
    assert_eq!(unsafe { mbuf_prepend(&mut m, 4, MBUF_WAITOK) }, 0);
    assert_ne!(m, old, "strict heads: prepend always returns a new head");
    // SAFETY: live chain.
    unsafe {
        assert_eq!(mbuf_next(m), old, "the old head follows the new one");
        assert_eq!(mbuf_len(m), 4);
        assert_eq!(
            mbuf_pkthdr_len(m),
            n + 4,
            "the packet header moved and grew"
        );
        let family = 2u32.to_be_bytes();
        assert_eq!(
            mbuf_copyback(m, 0, 4, family.as_ptr().cast(), MBUF_WAITOK),
            0
        );
    }
    let all = bytes(m, 0, n + 4).unwrap();
    assert_eq!(&all[..4], &2u32.to_be_bytes());
    assert_eq!(&all[4..], &data[..], "the payload is untouched");
    assert_eq!(segment_lengths(m).iter().sum::<usize>(), n + 4);
    // adj trims from the front across segments and keeps pkthdr.len in step.
    // SAFETY: live chain.
    unsafe { mbuf_adj(m, 4 + 700) };
    // SAFETY: live chain.
    assert_eq!(unsafe { mbuf_pkthdr_len(m) }, n - 700);
    assert_eq!(segment_lengths(m).iter().sum::<usize>(), n - 700);
    assert_eq!(bytes(m, 0, n - 700).unwrap(), data[700..]);
    // SAFETY: our chain.
    unsafe { mbuf_freem(m) };
    assert_eq!(
        xnu_sim::leaks().mbufs,
        0,
        "freem frees the whole chain, new head included"
    );
}

#[test]
fn fault_injection_fails_dontwait_allocations_only() {
    boot();
    fail_nth(Fault::MbufAlloc, 1);
    assert_eq!(
        alloc(MBUF_DONTWAIT, 100),
        Err(Errno::ENOMEM),
        "no memory: ENOMEM (kpi_mbuf.c)"
    );
    assert_eq!(faults_fired(Fault::MbufAlloc), 1);
    let m = alloc(MBUF_DONTWAIT, 100).expect("only the first call was made to fail");
    // SAFETY: our chain.
    unsafe { mbuf_freem(m) };
    // MBUF_WAITOK may block but never fails.
    xnu_sim::config::fail_with_probability(Fault::MbufAlloc, 1.0);
    let m = alloc(MBUF_WAITOK, 100).expect("WAITOK never fails");
    // SAFETY: our chain.
    unsafe { mbuf_freem(m) };
    assert_eq!(alloc(MBUF_DONTWAIT, 100), Err(Errno::ENOMEM));
    // A failing DONTWAIT prepend frees the chain (as XNU does) and returns NULL.
    let mut p = alloc(MBUF_WAITOK, 10).unwrap();
    // SAFETY: `p` is our chain; on failure the KPI frees it.
    assert_ne!(unsafe { mbuf_prepend(&mut p, 8, MBUF_DONTWAIT) }, 0);
    assert!(p.is_null());
    xnu_sim::config::clear_faults();
    assert_eq!(xnu_sim::leaks().mbufs, 0);
}

#[test]
fn freed_mbufs_are_poisoned() {
    boot();
    let m = alloc(MBUF_WAITOK, 64).unwrap();
    let data = pattern(64, 1);
    // SAFETY: live chain; the data pointer stays readable in the simulator's quarantine.
    unsafe {
        assert_eq!(
            mbuf_copyback(m, 0, 64, data.as_ptr().cast(), MBUF_WAITOK),
            0
        );
        let p = mbuf_data(m).cast::<u8>();
        let first = mbuf_len(m);
        assert_eq!(*p, data[0]);
        mbuf_freem(m);
        let after = std::slice::from_raw_parts(p, first);
        assert!(
            after.iter().all(|&b| b == 0xDB),
            "freed data is poisoned: {after:?}"
        );
    }
}

#[test]
fn a_stale_mbuf_handle_panics() {
    const NAME: &str = "a_stale_mbuf_handle_panics";
    if is_child(NAME) {
        boot();
        let m = alloc(MBUF_WAITOK, 64).unwrap();
        // SAFETY: freed, then used: must panic.
        unsafe {
            mbuf_freem(m);
            mbuf_len(m);
        }
        child_survived();
    }
    expect_kernel_panic(NAME, "not a live mbuf");
}

#[test]
fn a_double_free_panics() {
    const NAME: &str = "a_double_free_panics";
    if is_child(NAME) {
        boot();
        let m = alloc(MBUF_WAITOK, 64).unwrap();
        // SAFETY: freed twice: must panic.
        unsafe {
            mbuf_freem(m);
            mbuf_freem(m);
        }
        child_survived();
    }
    expect_kernel_panic(NAME, "not a live mbuf (double free?)");
}
