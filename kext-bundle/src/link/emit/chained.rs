//! `LC_DYLD_CHAINED_FIXUPS` for arm64e kexts (docs/kext-build.md 9.1): pointer format 7
//! (`DYLD_CHAINED_PTR_ARM64E_KERNEL`, stride 4, targets are offsets from the image start),
//! chains per 4 KiB page, binds by flat-namespace lookup (ordinal −2) with addend 0.
//!
//! Layout of the blob (dyld `mach-o/fixup-chains.h`): the header; `dyld_chained_starts_in_image`
//! (one offset per segment, 0 when it has no fixups) followed by one
//! `dyld_chained_starts_in_segment` per segment with fixups; the imports
//! (`DYLD_CHAINED_IMPORT`: lib ordinal 8 bits, weak 1, name offset 23); the names.

use super::super::fixup::{Auth, Fixup};
use super::super::layout::SegLayout;
use crate::consts::{CHAINED_PTR_ARM64E_KERNEL, CHAIN_PAGE};
use crate::{err, Result};
use std::collections::BTreeMap;

/// `BIND_SPECIAL_DYLIB_FLAT_LOOKUP` (−2) as an 8-bit library ordinal.
pub const FLAT_LOOKUP_ORDINAL: u8 = 0xFE;
/// `DYLD_CHAINED_IMPORT`
pub const IMPORT_FORMAT: u32 = 1;
pub const PAGE_START_NONE: u16 = 0xFFFF;

/// One 64-bit chained pointer of format 7 with its `next` (in 4-byte strides) filled in.
pub fn encode_pointer(f: &Fixup, ordinal: Option<u32>, next: u64) -> u64 {
    let next = (next & 0x7FF) << 51;
    let auth_bits = |a: &Auth| {
        (a.diversity as u64) << 32
            | (a.addr_div as u64) << 48
            | ((a.key as u64) & 3) << 49
            | 1 << 63
    };
    match f {
        Fixup::Rebase {
            target, auth: None, ..
        } => (target & ((1 << 43) - 1)) | next,
        Fixup::Rebase {
            target,
            auth: Some(a),
            ..
        } => (target & 0xFFFF_FFFF) | auth_bits(a) | next,
        Fixup::Bind { auth: None, .. } => ordinal.unwrap() as u64 & 0xFFFF | next | 1 << 62,
        Fixup::Bind { auth: Some(a), .. } => {
            ordinal.unwrap() as u64 & 0xFFFF | auth_bits(a) | next | 1 << 62
        }
    }
}

/// Builds the blob; writes every chained pointer into `mem(site) -> &mut [u8; 8]` through
/// `patch`. `imports` are the bind targets in import-table order.
pub fn encode(
    segments: &[SegLayout],
    fixups: &[Fixup],
    imports: &[String],
    mut patch: impl FnMut(u64, u64),
) -> Result<Vec<u8>> {
    let ordinal: BTreeMap<&str, u32> = imports
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i as u32))
        .collect();
    let mut by_site: BTreeMap<u64, &Fixup> = BTreeMap::new();
    for f in fixups {
        if by_site.insert(f.site(), f).is_some() {
            return Err(err!("two fixups at {:#x}", f.site()));
        }
    }
    // Segment table: every segment, __LINKEDIT included (it has no fixups).
    let nseg = segments.len() + 1;
    let mut starts_in_segments: Vec<Option<Vec<u8>>> = vec![None; nseg];
    for (si, seg) in segments.iter().enumerate() {
        let sites: Vec<u64> = by_site
            .range(seg.vmaddr..seg.vmaddr + seg.vmsize)
            .map(|(&s, _)| s)
            .collect();
        if sites.is_empty() {
            continue;
        }
        let page_count = seg.vmsize.div_ceil(CHAIN_PAGE) as usize;
        let mut page_start = vec![PAGE_START_NONE; page_count];
        for (i, &site) in sites.iter().enumerate() {
            let page = ((site - seg.vmaddr) / CHAIN_PAGE) as usize;
            if page_start[page] == PAGE_START_NONE {
                page_start[page] = ((site - seg.vmaddr) % CHAIN_PAGE) as u16;
            }
            let next = match sites.get(i + 1) {
                Some(&n) if (n - seg.vmaddr) / CHAIN_PAGE == page as u64 => (n - site) / 4,
                _ => 0,
            };
            let f = by_site[&site];
            let ord = match f {
                Fixup::Bind { name, .. } => Some(ordinal[name.as_str()]),
                Fixup::Rebase { .. } => None,
            };
            patch(site, encode_pointer(f, ord, next));
        }
        let mut b = Vec::new();
        b.extend_from_slice(&(22 + 2 * page_count as u32).to_le_bytes()); // size
        b.extend_from_slice(&(CHAIN_PAGE as u16).to_le_bytes());
        b.extend_from_slice(&CHAINED_PTR_ARM64E_KERNEL.to_le_bytes());
        b.extend_from_slice(&seg.vmaddr.to_le_bytes()); // segment_offset (base address 0)
        b.extend_from_slice(&0u32.to_le_bytes()); // max_valid_pointer (32-bit formats only)
        b.extend_from_slice(&(page_count as u16).to_le_bytes());
        for p in page_start {
            b.extend_from_slice(&p.to_le_bytes());
        }
        starts_in_segments[si] = Some(b);
    }

    // header (28 bytes), then starts_in_image at 32
    let starts_offset = 32u32;
    let mut starts = Vec::new();
    starts.extend_from_slice(&(nseg as u32).to_le_bytes());
    let mut pool = Vec::new();
    let pool_base = 4 + 4 * nseg as u32;
    let mut offsets = Vec::new();
    for s in &starts_in_segments {
        match s {
            None => offsets.push(0u32),
            Some(b) => {
                while !(pool_base as usize + pool.len()).is_multiple_of(8) {
                    pool.push(0);
                }
                offsets.push(pool_base + pool.len() as u32);
                pool.extend_from_slice(b);
            }
        }
    }
    for o in offsets {
        starts.extend_from_slice(&o.to_le_bytes());
    }
    starts.extend_from_slice(&pool);
    let mut imports_offset = starts_offset + starts.len() as u32;
    imports_offset = imports_offset.div_ceil(4) * 4;
    let mut names = Vec::new();
    let mut table = Vec::new();
    for n in imports {
        let import = FLAT_LOOKUP_ORDINAL as u32 | (names.len() as u32) << 9;
        table.extend_from_slice(&import.to_le_bytes());
        names.extend_from_slice(n.as_bytes());
        names.push(0);
    }
    let symbols_offset = imports_offset + table.len() as u32;
    let mut blob = Vec::new();
    for v in [
        0,
        starts_offset,
        imports_offset,
        symbols_offset,
        imports.len() as u32,
        IMPORT_FORMAT,
        0,
    ] {
        blob.extend_from_slice(&v.to_le_bytes());
    }
    blob.resize(starts_offset as usize, 0);
    blob.extend_from_slice(&starts);
    blob.resize(imports_offset as usize, 0);
    blob.extend_from_slice(&table);
    blob.extend_from_slice(&names);
    while blob.len() % 8 != 0 {
        blob.push(0);
    }
    Ok(blob)
}
