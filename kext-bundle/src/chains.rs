//! Reading `LC_DYLD_CHAINED_FIXUPS` back from an arm64e image, the way dyld's
//! kernel-collection builder walks it (`MachOAnalyzer::forEachFixupInAllChains`): header,
//! starts per segment, every chain of every 4 KiB page, imports and their names. Written
//! apart from the linker's encoder so that one checks the other.

use crate::{err, Result};
use std::collections::BTreeMap;

/// Pointer authentication of a chained pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PtrAuth {
    pub key: u8,
    pub addr_div: bool,
    pub diversity: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chained {
    /// `target`: an offset from the image start (format 7).
    Rebase {
        target: u64,
        high8: u8,
        auth: Option<PtrAuth>,
    },
    Bind {
        ordinal: u32,
        addend: i64,
        auth: Option<PtrAuth>,
    },
}

#[derive(Clone, Debug)]
pub struct Import {
    pub name: String,
    /// 8-bit library ordinal as stored (0xFE = flat lookup)
    pub lib_ordinal: u8,
    pub weak: bool,
}

#[derive(Clone, Debug)]
pub struct SegmentStarts {
    pub page_size: u16,
    pub pointer_format: u16,
    pub segment_offset: u64,
    pub page_count: u16,
}

#[derive(Clone, Debug, Default)]
pub struct Chains {
    pub fixups_version: u32,
    pub imports_format: u32,
    pub symbols_format: u32,
    /// One entry per segment index (None: no fixups).
    pub segments: Vec<Option<SegmentStarts>>,
    /// Fixup site (offset from the image start) -> what it says.
    pub fixups: BTreeMap<u64, Chained>,
    pub imports: Vec<Import>,
}

fn u16_at(b: &[u8], o: usize) -> Result<u16> {
    b.get(o..o + 2)
        .map(|s| u16::from_le_bytes(s.try_into().unwrap()))
        .ok_or_else(|| err!("chained fixups: read past the end at {o:#x}"))
}
fn u32_at(b: &[u8], o: usize) -> Result<u32> {
    b.get(o..o + 4)
        .map(|s| u32::from_le_bytes(s.try_into().unwrap()))
        .ok_or_else(|| err!("chained fixups: read past the end at {o:#x}"))
}
fn u64_at(b: &[u8], o: usize) -> Result<u64> {
    b.get(o..o + 8)
        .map(|s| u64::from_le_bytes(s.try_into().unwrap()))
        .ok_or_else(|| err!("chained fixups: read past the end at {o:#x}"))
}

/// Decodes one 64-bit arm64e chained pointer: (fixup, next in 4-byte strides).
pub fn decode_arm64e(raw: u64) -> (Chained, u64) {
    let next = (raw >> 51) & 0x7FF;
    let bind = raw >> 62 & 1 == 1;
    let auth = raw >> 63 == 1;
    let pa = || PtrAuth {
        diversity: (raw >> 32) as u16,
        addr_div: raw >> 48 & 1 == 1,
        key: ((raw >> 49) & 3) as u8,
    };
    let c = match (bind, auth) {
        (false, false) => Chained::Rebase {
            target: raw & ((1 << 43) - 1),
            high8: ((raw >> 43) & 0xFF) as u8,
            auth: None,
        },
        (false, true) => Chained::Rebase {
            target: raw & 0xFFFF_FFFF,
            high8: 0,
            auth: Some(pa()),
        },
        (true, false) => Chained::Bind {
            ordinal: (raw & 0xFFFF) as u32,
            addend: (((raw >> 32) & 0x7FFFF) as i64) << 45 >> 45,
            auth: None,
        },
        (true, true) => Chained::Bind {
            ordinal: (raw & 0xFFFF) as u32,
            addend: 0,
            auth: Some(pa()),
        },
    };
    (c, next)
}

/// `blob`: the `LC_DYLD_CHAINED_FIXUPS` payload; `read64(offset)`: a 64-bit value of the
/// image's memory at an offset from its start (None outside the file-backed image).
pub fn parse(blob: &[u8], read64: impl Fn(u64) -> Option<u64>) -> Result<Chains> {
    let mut c = Chains {
        fixups_version: u32_at(blob, 0)?,
        imports_format: u32_at(blob, 20)?,
        symbols_format: u32_at(blob, 24)?,
        ..Chains::default()
    };
    let starts = u32_at(blob, 4)? as usize;
    let imports_off = u32_at(blob, 8)? as usize;
    let symbols_off = u32_at(blob, 12)? as usize;
    let nimports = u32_at(blob, 16)? as usize;
    let seg_count = u32_at(blob, starts)? as usize;
    for si in 0..seg_count {
        let off = u32_at(blob, starts + 4 + 4 * si)? as usize;
        if off == 0 {
            c.segments.push(None);
            continue;
        }
        let s = starts + off;
        let seg = SegmentStarts {
            page_size: u16_at(blob, s + 4)?,
            pointer_format: u16_at(blob, s + 6)?,
            segment_offset: u64_at(blob, s + 8)?,
            page_count: u16_at(blob, s + 20)?,
        };
        if seg.pointer_format != 7 {
            return Err(err!(
                "segment {si}: pointer format {}, only 7 (DYLD_CHAINED_PTR_ARM64E_KERNEL) is read",
                seg.pointer_format
            ));
        }
        for page in 0..seg.page_count as u64 {
            let start = u16_at(blob, s + 22 + 2 * page as usize)?;
            if start == 0xFFFF {
                continue;
            }
            if start & 0x8000 != 0 {
                return Err(err!(
                    "segment {si} page {page}: multiple chain starts (not used by 64-bit formats)"
                ));
            }
            let mut site = seg.segment_offset + page * seg.page_size as u64 + start as u64;
            loop {
                let raw = read64(site).ok_or_else(|| {
                    err!("chain in segment {si} reaches {site:#x}, outside the file")
                })?;
                let (fix, next) = decode_arm64e(raw);
                if c.fixups.insert(site, fix).is_some() {
                    return Err(err!("fixup at {site:#x} reached twice (a chain loops)"));
                }
                if next == 0 {
                    break;
                }
                site += 4 * next;
            }
        }
        c.segments.push(Some(seg));
    }
    for i in 0..nimports {
        let raw = u32_at(blob, imports_off + 4 * i)?;
        let name_off = symbols_off + (raw >> 9) as usize;
        let end = blob[name_off.min(blob.len())..]
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| err!("import {i}: name not NUL-terminated"))?;
        c.imports.push(Import {
            name: String::from_utf8_lossy(&blob[name_off..name_off + end]).into_owned(),
            lib_ordinal: (raw & 0xFF) as u8,
            weak: raw >> 8 & 1 == 1,
        });
    }
    Ok(c)
}
