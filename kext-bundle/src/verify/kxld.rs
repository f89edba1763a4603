//! The x86_64 relocation simulator (spec section 10.2): loads the kext as kxld would against
//! a synthetic kernel built from the export lists, and checks every relocated site.

use super::kmod::check_kmod_info;
use super::{u32_at, u64_at};
use crate::consts::*;
use crate::image::Image;
use crate::kpi::{ExportSet, KpiTable};
use crate::{check_all, Result};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A kernel made up from export lists: every kext-visible name -> address, aliases sharing
/// their target's address.
pub struct SyntheticKernel {
    pub symbols: HashMap<String, u64>,
    pub by_address: HashMap<u64, Vec<String>>,
}

impl SyntheticKernel {
    /// `sets`: bundle -> (kext name -> kernel name). Kernel names get distinct addresses in
    /// the kernel's range, 16 bytes apart, in sorted order.
    pub fn from_sets<'a>(sets: impl IntoIterator<Item = &'a ExportSet>) -> SyntheticKernel {
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        for set in sets {
            for (k, v) in set {
                names.insert(k.clone(), v.clone());
            }
        }
        let targets: BTreeSet<&String> = names.values().collect();
        let addr_of: HashMap<&String, u64> = targets
            .into_iter()
            .enumerate()
            .map(|(i, t)| (t, 0xffff_ff80_0020_0000 + 16 * i as u64))
            .collect();
        let mut symbols = HashMap::new();
        let mut by_address: HashMap<u64, Vec<String>> = HashMap::new();
        for (k, v) in &names {
            let a = addr_of[v];
            symbols.insert(k.clone(), a);
            by_address.entry(a).or_default().push(k.clone());
        }
        SyntheticKernel {
            symbols,
            by_address,
        }
    }

    /// From the project's KPI table alone (when Apple's lists are absent).
    pub fn from_table(kpi: &KpiTable, bundles: &BTreeSet<String>) -> SyntheticKernel {
        let set: ExportSet = kpi
            .symbols
            .iter()
            .filter(|(_, b)| bundles.contains(*b))
            .map(|(s, _)| (s.clone(), s.clone()))
            .collect();
        Self::from_sets([&set])
    }
}

#[derive(Debug)]
pub struct SimReport {
    pub load_address: u64,
    pub local_applied: usize,
    pub extern_applied: usize,
    pub start: u64,
    pub stop: u64,
    pub start_symbol: String,
    pub stop_symbol: String,
}

/// Loads the kext at `load` as kxld would and checks every relocated site independently.
pub fn simulate(
    img: &Image,
    kernel: &SyntheticKernel,
    load: u64,
    identifier: &str,
    version: &str,
) -> Result<SimReport> {
    let kmod = check_kmod_info(img, identifier, version)?;
    let mut mem = img.memory();
    let mut written = vec![false; mem.len()];
    let mut errors = Vec::new();
    let mut unresolved = BTreeSet::new();
    let mut mark = |addr: u64, len: usize, errors: &mut Vec<String>| -> bool {
        let a = addr as usize;
        if a + len > written.len() {
            errors.push(format!("relocation site {addr:#x} beyond the image"));
            return false;
        }
        if written[a..a + len].iter().any(|&w| w) {
            errors.push(format!("relocation site {addr:#x} written twice"));
            return false;
        }
        written[a..a + len].iter_mut().for_each(|w| *w = true);
        true
    };
    for r in &img.local_relocs {
        if !mark(r.address as u64, 8, &mut errors) {
            continue;
        }
        let a = r.address as usize;
        let v = u64_at(&mem, a);
        mem[a..a + 8].copy_from_slice(&v.wrapping_add(load).to_le_bytes());
    }
    let symbol_name = |n: u32| {
        img.symbols
            .get(n as usize)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    };
    for r in &img.extern_relocs {
        let name = symbol_name(r.symbolnum);
        let Some(&s) = kernel.symbols.get(&name) else {
            unresolved.insert(name);
            continue;
        };
        let a = r.address as usize;
        if r.kind == 2 {
            if !mark(r.address as u64, 4, &mut errors) {
                continue;
            }
            let addend = u32_at(&mem, a) as i32 as i64;
            let v = s as i64 - (load as i64 + r.address as i64 + 4) + addend;
            if v < i32::MIN as i64 || v > i32::MAX as i64 {
                errors.push(format!(
                    "call to {name} at {:#x}: relocation entry has overflowed (beyond ±2 GiB)",
                    r.address
                ));
                continue;
            }
            mem[a..a + 4].copy_from_slice(&(v as i32).to_le_bytes());
        } else {
            if !mark(r.address as u64, 8, &mut errors) {
                continue;
            }
            let v = u64_at(&mem, a).wrapping_add(s);
            mem[a..a + 8].copy_from_slice(&v.to_le_bytes());
        }
    }
    if !unresolved.is_empty() {
        errors.push(format!(
            "unresolved symbols: {}",
            unresolved.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    check_all(errors)?;

    // Independent checks of the loaded image.
    let mut errors = Vec::new();
    for r in &img.extern_relocs {
        let name = symbol_name(r.symbolnum);
        let a = r.address as usize;
        let landed = if r.kind == 2 {
            // the site is the rel32 of a call/jmp (E8/E9) or a conditional jump (0F 8x)
            let op = mem[a - 1];
            let is_branch = op == 0xe8
                || op == 0xe9
                || (a >= 2 && mem[a - 2] == 0x0f && (0x80..=0x8f).contains(&op));
            if !is_branch {
                errors.push(format!(
                    "BRANCH to {name} at {:#x} is not the operand of a call or jump",
                    r.address
                ));
            }
            (load + r.address as u64 + 4).wrapping_add(u32_at(&mem, a) as i32 as i64 as u64)
        } else {
            u64_at(&mem, a)
        };
        if !kernel
            .by_address
            .get(&landed)
            .is_some_and(|n| n.contains(&name))
        {
            errors.push(format!(
                "reference to {name} at {:#x} lands on {landed:#x} ({:?}), not on {name}",
                r.address,
                kernel.by_address.get(&landed)
            ));
        }
    }
    for r in &img.local_relocs {
        let v = u64_at(&mem, r.address as usize);
        let original = img.read(r.address as u64, 8).map(|b| u64_at(b, 0));
        let target = v.wrapping_sub(load);
        if original != Some(target) {
            errors.push(format!(
                "pointer at {:#x}: {v:#x} is not its unslid value plus the load address",
                r.address
            ));
        }
        match img.section(r.symbolnum) {
            Some(s) if target >= s.addr && target <= s.addr + s.size => {}
            _ => errors.push(format!(
                "pointer at {:#x} lands on {target:#x}, outside the section its relocation names ({})",
                r.address, r.symbolnum
            )),
        }
    }
    let ka = kmod.address as usize;
    let start = u64_at(&mem, ka + KMOD_START_OFFSET);
    let stop = u64_at(&mem, ka + KMOD_STOP_OFFSET);
    for (v, unslid, sym, field) in [
        (start, kmod.start, &kmod.start_symbol, "start"),
        (stop, kmod.stop, &kmod.stop_symbol, "stop"),
    ] {
        if v != load + unslid {
            errors.push(format!(
                "kmod_info.{field} after loading is {v:#x}, expected {:#x} ({sym})",
                load + unslid
            ));
        }
        let in_text = img
            .segments
            .first()
            .is_some_and(|t| v >= load + t.vmaddr && v < load + t.vmaddr + t.vmsize);
        if !in_text {
            errors.push(format!(
                "kmod_info.{field} after loading ({v:#x}) is not in the loaded __TEXT"
            ));
        }
    }
    check_all(errors)?;
    Ok(SimReport {
        load_address: load,
        local_applied: img.local_relocs.len(),
        extern_applied: img.extern_relocs.len(),
        start,
        stop,
        start_symbol: kmod.start_symbol,
        stop_symbol: kmod.stop_symbol,
    })
}

/// A small xorshift generator: the simulator's load address is random per run, printed, and
/// reproducible with a seed.
pub fn load_address(seed: u64) -> u64 {
    let mut x = seed | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    // in the kext range below the kernel, 16 MiB of choice, within ±2 GiB of the kernel
    0xffff_ff7f_80a0_0000 + (x % 0x1000) * PAGE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_kernel_gives_aliases_their_targets_address() {
        let set: ExportSet = [
            ("_OSMalloc", "_OSMalloc_external"),
            ("_OSMalloc_external", "_OSMalloc_external"),
            ("_printf", "_printf"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let k = SyntheticKernel::from_sets([&set]);
        assert_eq!(k.symbols["_OSMalloc"], k.symbols["_OSMalloc_external"]);
        assert_ne!(k.symbols["_OSMalloc"], k.symbols["_printf"]);
        let mut at = k.by_address[&k.symbols["_OSMalloc"]].clone();
        at.sort();
        assert_eq!(at, ["_OSMalloc", "_OSMalloc_external"]);
        assert!(k.symbols.values().all(|&a| a >= 0xffff_ff80_0000_0000));
    }

    #[test]
    fn load_addresses_are_page_aligned_and_within_branch_range_of_the_kernel() {
        for seed in 0..1000u64 {
            let a = load_address(seed);
            assert_eq!(a % PAGE, 0);
            assert!(a >= 0xffff_ff7f_8000_0000);
            // a call from anywhere in a 16 MiB kext to the synthetic kernel fits a rel32
            assert!(0xffff_ff80_0020_0000u64 + 0x10_0000 - a < i32::MAX as u64);
        }
        assert_ne!(load_address(1), load_address(2));
    }
}
