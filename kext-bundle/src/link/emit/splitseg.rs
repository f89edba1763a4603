//! `LC_SEGMENT_SPLIT_INFO` v2 (docs/kext-build.md 9.1): every reference the kernel-collection
//! builder must adjust when it moves each segment by its own amount.
//!
//! Encoding (dyld `SplitSeg.cpp`, `AdjustDylibSegments.cpp`): a `0x7F` marker, then
//! `<count> FromToSection+` where `FromToSection = <from-sect> <to-sect> <count> ToOffset+`,
//! `ToOffset = <to-offset-delta> <count> FromOffset+`, `FromOffset = <kind> <count>
//! <from-offset-delta>+`, all ULEB128, sorted, deltas from the previous value in the same
//! group; a terminating 0, padding to 8. Sections are numbered 1.. in load-command order
//! across all segments; 0 is the mach header.
//!
//! Recorded: every 64-bit pointer the loader rebases (even within one section: the chain's
//! target moves with its segment), and every instruction reference that crosses sections.

use super::super::fixup::{Ref, RefKind};
use super::super::layout::Layout;
use crate::{err, Result};
use std::collections::BTreeMap;

pub const V2_FORMAT: u8 = 0x7F;

pub fn uleb(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7F) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// (1-based section index, offset in it) of an address; the one-past-the-end address of a
/// section counts as in it.
fn locate(layout: &Layout, addr: u64) -> Option<(u64, u64)> {
    let i = layout
        .outs
        .iter()
        .position(|s| addr >= s.addr && addr < s.addr + s.size.max(1))
        .or_else(|| layout.outs.iter().position(|s| addr == s.addr + s.size))?;
    Some((i as u64 + 1, addr - layout.outs[i].addr))
}

type Groups = BTreeMap<(u64, u64), BTreeMap<u64, BTreeMap<u8, Vec<u64>>>>;

pub fn encode(layout: &Layout, refs: &[Ref]) -> Result<Vec<u8>> {
    let mut groups: Groups = BTreeMap::new();
    for r in refs {
        let (Some((fs, fo)), Some((ts, to))) = (locate(layout, r.from), locate(layout, r.to))
        else {
            return Err(err!(
                "split-seg reference {:#x} -> {:#x} outside every section",
                r.from,
                r.to
            ));
        };
        if fs == ts && r.kind != RefKind::Pointer64 {
            continue;
        }
        groups
            .entry((fs, ts))
            .or_default()
            .entry(to)
            .or_default()
            .entry(r.kind as u8)
            .or_default()
            .push(fo);
    }
    let mut out = vec![V2_FORMAT];
    uleb(groups.len() as u64, &mut out);
    for ((fs, ts), to_offsets) in groups {
        uleb(fs, &mut out);
        uleb(ts, &mut out);
        uleb(to_offsets.len() as u64, &mut out);
        let mut last_to = 0;
        for (to, kinds) in to_offsets {
            uleb(to - last_to, &mut out);
            last_to = to;
            uleb(kinds.len() as u64, &mut out);
            for (kind, mut froms) in kinds {
                froms.sort_unstable();
                froms.dedup();
                uleb(kind as u64, &mut out);
                uleb(froms.len() as u64, &mut out);
                let mut last_from = 0;
                for f in froms {
                    uleb(f - last_from, &mut out);
                    last_from = f;
                }
            }
        }
    }
    out.push(0);
    while out.len() % 8 != 0 {
        out.push(0);
    }
    Ok(out)
}
