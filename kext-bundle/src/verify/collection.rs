//! "Building a collection" (docs/kext-build.md 9.5): moves each segment of an arm64e kext by its
//! own amount, re-derives every ADRP, low-12 offset, branch and pointer *only* from the
//! split-seg info and the chains, as dyld's AppCacheBuilder does (`adjustReferencesUsingInfoV2`,
//! then the chains), and checks that each reference lands where it pointed before the move,
//! plus its segment's slide. A reference missing from split-seg info lands elsewhere.
//!
//! The references to check are found independently in the unslid image: every chained
//! pointer, every B/BL, every ADRP and the ADD/LDR/STR that use its register within the same
//! basic block. Two collections are built: one with 16 KiB slides (what the builder does),
//! one that also moves segments by a multiple of 16 bytes within a page, which exposes a
//! missing low-12 entry of a cross-segment reference (only those are checked there: the
//! builder never moves a segment by part of a page, so references within one need none).

use super::splitseg;
use crate::chains::Chained;
use crate::image::Image;
use crate::link::arch::arm64_insn as insn;
use crate::{check_all, err, Result};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug)]
pub struct CollectionReport {
    pub slides: Vec<u64>,
    pub pointers: usize,
    pub binds: usize,
    pub branches: usize,
    pub adrps: usize,
    pub low12s: usize,
}

/// Per-segment slides from a seed: distinct, non-zero; `sub_page` adds 16-byte steps.
pub fn slides(nseg: usize, seed: u64, sub_page: bool) -> Vec<u64> {
    let mut x = seed | 1;
    (0..nseg)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pages = 1 + i as u64 * 64 + x % 61; // distinct: i*64 .. i*64+61
            pages * 0x4000 + if sub_page { 16 * (1 + x % 200) } else { 0 }
        })
        .collect()
}

struct Moved<'a> {
    img: &'a Image,
    slides: Vec<u64>,
    /// new image memory, addressed by *new* address
    mem: BTreeMap<u64, Vec<u8>>,
}

impl Moved<'_> {
    fn seg_of(&self, addr: u64) -> Option<usize> {
        self.img
            .segments
            .iter()
            .position(|s| addr >= s.vmaddr && addr < s.vmaddr + s.vmsize.max(1))
    }
    fn slide_of(&self, addr: u64) -> u64 {
        self.seg_of(addr).map(|i| self.slides[i]).unwrap_or(0)
    }
    fn word(&self, new: u64) -> u32 {
        let (&base, buf) = self.mem.range(..=new).next_back().expect("mapped");
        let o = (new - base) as usize;
        u32::from_le_bytes(buf[o..o + 4].try_into().unwrap())
    }
    fn set_word(&mut self, new: u64, v: u32) {
        let (&base, buf) = self.mem.range_mut(..=new).next_back().expect("mapped");
        let o = (new - base) as usize;
        buf[o..o + 4].copy_from_slice(&v.to_le_bytes());
    }
}

/// Nearest symbol at or before `addr`, for messages.
fn describe(img: &Image, addr: u64) -> String {
    img.symbols
        .iter()
        .filter(|s| s.is_defined() && s.n_value <= addr)
        .max_by_key(|s| s.n_value)
        .map(|s| format!("{}+{:#x} ({addr:#x})", s.name, addr - s.n_value))
        .unwrap_or_else(|| format!("{addr:#x}"))
}

/// Users of the register an ADRP at `i` (instruction index in `code`) defines, within its
/// basic block, until the register is written again.
fn low12_users(code: &[u32], i: usize) -> Vec<usize> {
    let d = insn::rd(code[i]);
    let mut users = Vec::new();
    for (j, &w) in code.iter().enumerate().skip(i + 1).take(64) {
        let is_branch = insn::is_branch26(w)
            || w & 0xFE00_0000 == 0xD600_0000 // BR/BLR/RET and friends
            || w & 0x7E00_0000 == 0x3400_0000 // CBZ/CBNZ
            || w & 0x7E00_0000 == 0x3600_0000 // TBZ/TBNZ
            || w & 0xFF00_0010 == 0x5400_0000; // B.cond
        if is_branch {
            break;
        }
        let ldst = w & 0x0A00_0000 == 0x0800_0000;
        if insn::is_add_imm(w) && insn::rn(w) == d {
            users.push(j);
            if insn::rd(w) == d {
                break;
            }
            continue;
        }
        if insn::is_ldst_uimm(w) && insn::rn(w) == d {
            users.push(j);
            let load_into_d = w & 0x0040_0000 != 0 && w & 0x0400_0000 == 0 && insn::rd(w) == d;
            if load_into_d {
                break;
            }
            continue;
        }
        if ldst {
            let load = w & 0x0040_0000 != 0;
            let pair = w & 0x3800_0000 == 0x2800_0000;
            let vector = w & 0x0400_0000 != 0;
            if insn::rn(w) == d
                || load && !vector && (insn::rd(w) == d || pair && (w >> 10) & 0x1F == d)
            {
                break;
            }
            continue;
        }
        if insn::rd(w) == d {
            break;
        }
    }
    users
}

/// Builds one collection with `slides` (one per segment, `__LINKEDIT` included) and checks it.
/// `kernel`: import name -> address.
pub fn build(
    img: &Image,
    slides: &[u64],
    kernel: &HashMap<String, u64>,
) -> Result<CollectionReport> {
    let chains = img
        .chains
        .as_ref()
        .ok_or_else(|| err!("no chained fixups"))?;
    let blob = img
        .linkedit_blob(img.split_seg_cmd)
        .ok_or_else(|| err!("no LC_SEGMENT_SPLIT_INFO"))?;
    let entries = splitseg::parse(blob)?;
    let mut m = Moved {
        img,
        slides: slides.to_vec(),
        mem: BTreeMap::new(),
    };
    let unslid = img.memory();
    for (i, s) in img
        .segments
        .iter()
        .filter(|s| s.name != "__LINKEDIT")
        .enumerate()
    {
        let bytes = unslid[s.vmaddr as usize..(s.vmaddr + s.vmsize) as usize].to_vec();
        m.mem.insert(s.vmaddr + slides[i], bytes);
    }
    // Section 0 is the mach header (segment 0's slide); sections 1.. in load-command order.
    let mut sect_old = vec![img.segments[0].vmaddr];
    for s in &img.sections {
        sect_old.push(s.addr);
    }
    let new_addr = |old: u64, m: &Moved| old + m.slide_of(old);
    let sub_page = slides.iter().any(|s| s % 0x1000 != 0);

    // 1. split-seg: instructions and rebase targets, as adjustReference does
    let mut new_target: HashMap<u64, u64> = HashMap::new(); // chained rebase site -> new target
    let mut errors = Vec::new();
    for e in &entries {
        let (Some(&fs), Some(&ts)) = (
            sect_old.get(e.from_section as usize),
            sect_old.get(e.to_section as usize),
        ) else {
            errors.push(format!("split-seg entry {e:?}: section index out of range"));
            continue;
        };
        let from_old = fs + e.from_offset;
        let to_old = ts + e.to_offset;
        // the to-section's slide applies even to its one-past-the-end address
        let to_slide = m.slide_of(ts);
        let from_new = new_addr(from_old, &m);
        let to_new = to_old + to_slide;
        let adjust = to_slide as i64 - m.slide_of(from_old) as i64;
        match e.kind {
            2 => match chains.fixups.get(&from_old) {
                Some(Chained::Rebase { .. }) => {
                    new_target.insert(from_old, to_new);
                }
                Some(Chained::Bind { .. }) => {}
                None => errors.push(format!(
                    "split-seg POINTER_64 at {} is not a chained fixup",
                    describe(img, from_old)
                )),
            },
            5 => {
                let w = m.word(from_new);
                if insn::is_adrp(w) {
                    match insn::encode_adrp(w, from_new, to_new) {
                        Some(n) => m.set_word(from_new, n),
                        None => errors.push(format!(
                            "ADRP at {} cannot reach its target",
                            describe(img, from_old)
                        )),
                    }
                }
            }
            6 => {
                let w = m.word(from_new);
                if w != 0xD503_201F {
                    match insn::encode_low12(w, to_new) {
                        Ok(n) => m.set_word(from_new, n),
                        Err(x) => {
                            errors.push(format!("low-12 at {}: {x}", describe(img, from_old)))
                        }
                    }
                }
            }
            7 if adjust != 0 => {
                let w = m.word(from_new);
                match insn::encode_branch26(w, from_new, to_new) {
                    Some(n) => m.set_word(from_new, n),
                    None => errors.push(format!(
                        "branch at {} out of range",
                        describe(img, from_old)
                    )),
                }
            }
            7 => {}
            k => errors.push(format!(
                "split-seg kind {k} at {} is not one an arm64e kext uses",
                describe(img, from_old)
            )),
        }
    }

    // 2. the chains: rebases get their (adjusted) target, binds the kernel's address
    let mut report = CollectionReport {
        slides: slides.to_vec(),
        pointers: 0,
        binds: 0,
        branches: 0,
        adrps: 0,
        low12s: 0,
    };
    let mut final_ptr: HashMap<u64, u64> = HashMap::new();
    for (&site, f) in &chains.fixups {
        let v = match f {
            Chained::Rebase { target, .. } => *new_target.get(&site).unwrap_or(target),
            Chained::Bind { ordinal, .. } => {
                let name = &chains.imports[*ordinal as usize].name;
                match kernel.get(name) {
                    Some(&a) => a,
                    None => {
                        errors.push(format!(
                            "bind of {name}: unresolved in the kernel's exports"
                        ));
                        continue;
                    }
                }
            }
        };
        final_ptr.insert(site, v);
    }
    check_all(errors)?;

    // 3. every reference, found in the unslid image, lands on its target plus its slide
    let mut errors = Vec::new();
    for (&site, f) in &chains.fixups {
        let got = final_ptr[&site];
        let want = match f {
            Chained::Rebase { target, .. } => {
                report.pointers += 1;
                let end_of = img
                    .sections
                    .iter()
                    .find(|s| s.addr + s.size == *target && s.size > 0);
                target
                    + end_of
                        .map(|s| m.slide_of(s.addr))
                        .unwrap_or_else(|| m.slide_of(*target))
            }
            Chained::Bind { ordinal, .. } => {
                report.binds += 1;
                kernel[&chains.imports[*ordinal as usize].name]
            }
        };
        if got != want {
            errors.push(format!(
                "pointer at {} to {}: after the move it holds {got:#x}, expected {want:#x}",
                describe(img, site),
                match f {
                    Chained::Rebase { target, .. } => describe(img, *target),
                    Chained::Bind { ordinal, .. } => chains.imports[*ordinal as usize].name.clone(),
                }
            ));
        }
    }
    for sect in img.sections.iter().filter(|s| s.segname == "__TEXT_EXEC") {
        let code: Vec<u32> = unslid[sect.addr as usize..(sect.addr + sect.size) as usize]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        for (i, &w) in code.iter().enumerate() {
            let pc = sect.addr + 4 * i as u64;
            let pc_new = new_addr(pc, &m);
            if insn::is_branch26(w) {
                report.branches += 1;
                let target = pc.wrapping_add(insn::branch26_offset(w) as u64);
                let want = new_addr(target, &m);
                let got = pc_new.wrapping_add(insn::branch26_offset(m.word(pc_new)) as u64);
                if got != want {
                    errors.push(format!(
                        "branch at {} to {}: lands on {got:#x}, expected {want:#x}",
                        describe(img, pc),
                        describe(img, target)
                    ));
                }
            } else if insn::is_adrp(w) {
                report.adrps += 1;
                let page = (pc & !0xFFF).wrapping_add((insn::adrp_pages(w) << 12) as u64);
                let new_page =
                    (pc_new & !0xFFF).wrapping_add((insn::adrp_pages(m.word(pc_new)) << 12) as u64);
                let users = low12_users(&code, i);
                if users.is_empty() {
                    // page-level only, exact when slides are whole pages
                    let want = new_addr(page, &m) & !0xFFF;
                    if slides.iter().all(|s| s % 0x1000 == 0) && new_page != want {
                        errors.push(format!("ADRP at {} to page {page:#x}: lands on page {new_page:#x}, expected {want:#x}", describe(img, pc)));
                    }
                }
                for j in users {
                    let target = page + insn::low12(code[j]);
                    // Within one segment an ADRP pair needs no entry: the builder moves
                    // segments by whole pages, which a sub-page slide is not.
                    if sub_page && m.seg_of(target) == m.seg_of(pc) {
                        continue;
                    }
                    report.low12s += 1;
                    let user_new = new_addr(sect.addr + 4 * j as u64, &m);
                    let got = new_page + insn::low12(m.word(user_new));
                    let want = new_addr(target, &m);
                    if got != want {
                        errors.push(format!(
                            "ADRP at {} + low-12 at {:#x} to {}: lands on {got:#x}, expected {want:#x}",
                            describe(img, pc),
                            sect.addr + 4 * j as u64,
                            describe(img, target)
                        ));
                    }
                }
            }
        }
    }
    if errors.len() > 20 {
        let n = errors.len();
        errors.truncate(20);
        errors.push(format!("... {} more", n - 20));
    }
    check_all(errors)?;
    Ok(report)
}
