//! arm64e: relocation lowering (docs/kext-build.md 9.2, 9.3). Each input relocation becomes
//! patched instruction or pointer bytes, a chained fixup (rebase or bind, plain or signed),
//! and a split-seg reference for the kernel-collection builder, which moves every segment
//! by its own amount.
//!
//! Kernel calls go through plain stubs, as ld64 makes them for a minimum of macOS 11:
//! `adrp x16, slot@PAGE; ldr x16, [x16, slot@PAGEOFF]; br x16` over `__got` slots that are
//! plain binds. (With 12+ ld64 uses `__auth_stubs`/`__auth_got`; either is accepted.)
//!
//! Pointer authentication is made in C: a Rust object may not carry a signed pointer
//! (rustc signs nothing, so such a relocation means something else went wrong), and a
//! C object may not store a plain pointer into code, which the kernel would authenticate.

use super::super::address::{Addresses, Target};
use super::super::fixup::{Auth, Fixup, Lowered, Ref, RefKind};
use super::super::resolve::{is_dropped, Resolved};
use super::super::short;
use super::arm64_insn as insn;
use crate::check_all;
use crate::consts::CHAIN_PAGE;
use object::macho;
use std::collections::HashMap;

/// arm64 relocation types used here.
pub mod rt {
    pub use object::macho::{
        ARM64_RELOC_ADDEND as ADDEND, ARM64_RELOC_AUTHENTICATED_POINTER as AUTH_POINTER,
        ARM64_RELOC_BRANCH26 as BRANCH26, ARM64_RELOC_GOT_LOAD_PAGE21 as GOT_LOAD_PAGE21,
        ARM64_RELOC_GOT_LOAD_PAGEOFF12 as GOT_LOAD_PAGEOFF12, ARM64_RELOC_PAGE21 as PAGE21,
        ARM64_RELOC_PAGEOFF12 as PAGEOFF12, ARM64_RELOC_UNSIGNED as UNSIGNED,
    };
}

pub fn reloc_type_name(t: u8) -> &'static str {
    match t {
        0 => "UNSIGNED",
        1 => "SUBTRACTOR",
        2 => "BRANCH26",
        3 => "PAGE21",
        4 => "PAGEOFF12",
        5 => "GOT_LOAD_PAGE21",
        6 => "GOT_LOAD_PAGEOFF12",
        7 => "POINTER_TO_GOT",
        8 => "TLVP_LOAD_PAGE21",
        9 => "TLVP_LOAD_PAGEOFF12",
        10 => "ADDEND",
        11 => "AUTHENTICATED_POINTER",
        _ => "unknown",
    }
}

/// Bytes of one stub.
pub const STUB_SIZE: u64 = 12;
const STUB: [u32; 3] = [0x9000_0010, 0xF940_0210, 0xD61F_0200]; // adrp x16; ldr x16, [x16]; br x16

/// The stubs and GOT the linker makes.
pub struct Indirect {
    /// Slot key (global name, or `#obj#sym` for a local) and its first user, in slot order.
    pub got: Vec<(String, usize, usize)>,
    pub got_index: HashMap<String, usize>,
    /// Imported functions called with BRANCH26, in stub order.
    pub stubs: Vec<String>,
    pub stub_index: HashMap<String, usize>,
}

fn is_import(r: &Resolved, name: &str) -> bool {
    r.imports.contains_key(name) && !r.globals.contains_key(name)
}

pub fn indirect(r: &Resolved) -> Indirect {
    let mut ind = Indirect {
        got: Vec::new(),
        got_index: HashMap::new(),
        stubs: Vec::new(),
        stub_index: HashMap::new(),
    };
    let add_slot = |ind: &mut Indirect, key: String, oi: usize, si: usize| {
        if !ind.got_index.contains_key(&key) {
            ind.got_index.insert(key.clone(), ind.got.len());
            ind.got.push((key, oi, si));
        }
    };
    for (oi, obj) in r.objs.iter().enumerate() {
        for sect in &obj.sections {
            if is_dropped(&sect.segname, &sect.sectname, sect.flags) {
                continue;
            }
            for rel in sect.relocs.iter().filter(|r| r.is_extern) {
                let Some(s) = obj.symbols.get(rel.symbolnum as usize) else {
                    continue;
                };
                let si = rel.symbolnum as usize;
                if rel.kind == rt::GOT_LOAD_PAGE21 || rel.kind == rt::GOT_LOAD_PAGEOFF12 {
                    let key = if s.is_ext() {
                        s.name.clone()
                    } else {
                        format!("#{oi}#{si}")
                    };
                    add_slot(&mut ind, key, oi, si);
                } else if rel.kind == rt::BRANCH26 && is_import(r, &s.name) {
                    add_slot(&mut ind, s.name.clone(), oi, si);
                    if !ind.stub_index.contains_key(&s.name) {
                        ind.stub_index.insert(s.name.clone(), ind.stubs.len());
                        ind.stubs.push(s.name.clone());
                    }
                }
            }
        }
    }
    ind
}

/// Checks a chained-fixup site: 4-byte aligned, within one 4 KiB chain page, below 1 GiB.
fn pointer_site_problem(site: u64) -> Option<String> {
    if !site.is_multiple_of(4) {
        Some(format!(
            "pointer at {site:#x} is not 4-byte aligned (chained fixups have a stride of 4)"
        ))
    } else if site % CHAIN_PAGE + 8 > CHAIN_PAGE {
        Some(format!("pointer at {site:#x} straddles a 4 KiB chain page"))
    } else if site >= 1 << 30 {
        Some(format!("pointer at {site:#x} lies beyond 1 GiB"))
    } else {
        None
    }
}

/// Lowers every relocation; `stubs_out`/`got_out` are the synthesized sections.
pub fn lower(
    a: &Addresses,
    ind: &Indirect,
    stubs_out: Option<usize>,
    got_out: Option<usize>,
) -> crate::Result<Lowered> {
    let objs = &a.r.objs;
    let outs = &a.layout.outs;
    let mut errors: Vec<String> = Vec::new();
    let mut low = Lowered::default();
    let slot_addr = |i: usize| a.out_addr(got_out.expect("GOT")) + 8 * i as u64;
    let stub_addr = |i: usize| a.out_addr(stubs_out.expect("stubs")) + STUB_SIZE * i as u64;
    let in_code = |t: u64| {
        a.ordinal_of(t).is_some_and(|o| {
            let s = &outs[o as usize - 1];
            s.segname == "__TEXT_EXEC" || s.flags & macho::S_ATTR_SOME_INSTRUCTIONS != 0
        })
    };

    // GOT slots: binds for imports, plain rebases for kext symbols (the shim signs those
    // at run time with paciza after loading them).
    for (i, (key, oi, si)) in ind.got.iter().enumerate() {
        let slot = slot_addr(i);
        match a.resolve(*oi, *si as u32) {
            Ok(Target::Import(name)) => low.fixups.push(Fixup::Bind {
                site: slot,
                name,
                call: false,
                auth: None,
            }),
            Ok(Target::Kext(t)) => match a.ordinal_of(t) {
                Some(ord) => {
                    low.writes
                        .push((got_out.unwrap(), 8 * i, t.to_le_bytes().to_vec()));
                    low.fixups.push(Fixup::rebase(slot, t, ord));
                    low.refs.push(Ref {
                        kind: RefKind::Pointer64,
                        from: slot,
                        to: t,
                    });
                }
                None => errors.push(format!(
                    "GOT entry for {key}: target {t:#x} outside every section"
                )),
            },
            Err(e) => errors.push(e),
        }
    }
    // Stubs.
    for (i, name) in ind.stubs.iter().enumerate() {
        let at = stub_addr(i);
        let slot = slot_addr(ind.got_index[name]);
        let adrp = insn::encode_adrp(STUB[0], at, slot).expect("the GOT is within 4 GiB");
        let ldr = insn::encode_low12(STUB[1], slot).expect("GOT slots are 8-byte aligned");
        let bytes: Vec<u8> = [adrp, ldr, STUB[2]]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        low.writes
            .push((stubs_out.unwrap(), (STUB_SIZE as usize) * i, bytes));
        low.refs.push(Ref {
            kind: RefKind::Adrp,
            from: at,
            to: slot,
        });
        low.refs.push(Ref {
            kind: RefKind::Off12,
            from: at + 4,
            to: slot,
        });
    }

    for (oi, obj) in objs.iter().enumerate() {
        let oname = short(&obj.name);
        for (idx, sect) in obj.sections.iter().enumerate() {
            let Some(&(o, base_off)) = a.layout.place.get(&(oi, idx)) else {
                continue;
            };
            let site_sect_out = a.out_addr(o) + base_off;
            let mut addend: Option<i64> = None;
            for r in &sect.relocs {
                let off = r.address as u64;
                let width = 1u64 << r.length;
                let here = format!("{oname} at {}+{off:#x}", sect.full_name());
                let tname = reloc_type_name(r.kind);
                if r.kind == rt::ADDEND {
                    // the 24-bit signed addend of the PAGE21/PAGEOFF12 that follows
                    addend = Some(((r.symbolnum as i64) << 40) >> 40);
                    continue;
                }
                let add = addend.take().unwrap_or(0);
                if off + width > sect.size || sect.is_zerofill() {
                    errors.push(format!(
                        "{oname}: relocation at {}+{off:#x} outside the section",
                        sect.full_name()
                    ));
                    continue;
                }
                let p = site_sect_out + off;
                let at = (base_off + off) as usize;
                let sym_name = if r.is_extern {
                    obj.symbols
                        .get(r.symbolnum as usize)
                        .map(|s| s.name.clone())
                        .unwrap_or_default()
                } else {
                    obj.section(r.symbolnum)
                        .map(|s| s.full_name())
                        .unwrap_or_default()
                };
                let word = || {
                    u32::from_le_bytes(
                        sect.data[off as usize..off as usize + 4]
                            .try_into()
                            .unwrap(),
                    )
                };
                let quad = || {
                    u64::from_le_bytes(
                        sect.data[off as usize..off as usize + 8]
                            .try_into()
                            .unwrap(),
                    )
                };
                let put32 =
                    |v: u32, low: &mut Lowered| low.writes.push((o, at, v.to_le_bytes().to_vec()));
                match r.kind {
                    rt::BRANCH26 | rt::PAGE21 | rt::PAGEOFF12 | rt::GOT_LOAD_PAGE21 | rt::GOT_LOAD_PAGEOFF12 => {
                        if r.length != 2 || !r.is_extern {
                            errors.push(format!("{tname} relocation to {sym_name} ({here}): must be extern and 32-bit"));
                            continue;
                        }
                        let got = r.kind == rt::GOT_LOAD_PAGE21 || r.kind == rt::GOT_LOAD_PAGEOFF12;
                        let target = if got {
                            let s = &obj.symbols[r.symbolnum as usize];
                            let key = if s.is_ext() { s.name.clone() } else { format!("#{oi}#{}", r.symbolnum) };
                            slot_addr(ind.got_index[&key]) as i64 + add
                        } else {
                            match a.resolve(oi, r.symbolnum) {
                                Err(e) => {
                                    errors.push(e);
                                    continue;
                                }
                                Ok(Target::Kext(t)) => t as i64 + add,
                                Ok(Target::Import(name)) if r.kind == rt::BRANCH26 => {
                                    if add != 0 {
                                        errors.push(format!("call to kernel symbol {name} ({here}): non-zero addend {add} on an import"));
                                        continue;
                                    }
                                    stub_addr(ind.stub_index[&name]) as i64
                                }
                                Ok(Target::Import(name)) => {
                                    errors.push(format!("{tname} data reference to kernel symbol {name} ({here}): only calls (BRANCH26) and GOT loads may reach the kernel"));
                                    continue;
                                }
                            }
                        } as u64;
                        let (kind, encoded) = match r.kind {
                            rt::BRANCH26 => (RefKind::Br26, insn::encode_branch26(word(), p, target).ok_or_else(|| "branch beyond ±128 MiB".to_string())),
                            rt::PAGE21 | rt::GOT_LOAD_PAGE21 if r.pcrel => (RefKind::Adrp, insn::encode_adrp(word(), p, target).ok_or_else(|| "page beyond ±4 GiB".to_string())),
                            rt::PAGEOFF12 | rt::GOT_LOAD_PAGEOFF12 if !r.pcrel => (RefKind::Off12, insn::encode_low12(word(), target)),
                            _ => {
                                errors.push(format!("{tname} relocation to {sym_name} ({here}): wrong pc-relative flag"));
                                continue;
                            }
                        };
                        match encoded {
                            Ok(w) => {
                                put32(w, &mut low);
                                low.refs.push(Ref { kind, from: p, to: target });
                            }
                            Err(e) => errors.push(format!("{tname} reference to {sym_name} ({here}): {e}")),
                        }
                    }
                    rt::UNSIGNED | rt::AUTH_POINTER => {
                        let auth = r.kind == rt::AUTH_POINTER;
                        if r.pcrel || r.length != 3 {
                            errors.push(format!("{tname} relocation to {sym_name} ({here}): only 64-bit absolute pointers can be rebased"));
                            continue;
                        }
                        if auth && obj.is_rust() {
                            errors.push(format!("signed pointer to {sym_name} ({here}): a Rust object carries an authenticated pointer; rustc signs nothing, so every pointer the kernel calls must be made in C"));
                            continue;
                        }
                        let content = quad();
                        let (value, auth) = if auth {
                            let a = Auth {
                                key: ((content >> 49) & 3) as u8,
                                addr_div: content >> 48 & 1 == 1,
                                diversity: (content >> 32) as u16,
                            };
                            ((content as u32 as i32) as i64, Some(a))
                        } else {
                            (content as i64, None)
                        };
                        if let Some(e) = pointer_site_problem(p) {
                            errors.push(format!("{e}: pointer to {sym_name} ({here})"));
                            continue;
                        }
                        let target = if r.is_extern {
                            match a.resolve(oi, r.symbolnum) {
                                Err(e) => {
                                    errors.push(e);
                                    continue;
                                }
                                Ok(Target::Import(name)) => {
                                    if value != 0 {
                                        errors.push(format!("pointer to kernel symbol {name} ({here}): non-zero addend {value} on an import (chained binds have none)"));
                                    } else {
                                        low.writes.push((o, at, vec![0; 8]));
                                        low.fixups.push(Fixup::Bind { site: p, name, call: false, auth });
                                    }
                                    continue;
                                }
                                Ok(Target::Kext(t)) => (t as i64).wrapping_add(value) as u64,
                            }
                        } else {
                            match a.section_addr(oi, r.symbolnum) {
                                Some((out, inp)) => (value as u64).wrapping_add(out.wrapping_sub(inp)),
                                None => {
                                    errors.push(format!("{tname} reference to section {sym_name} ({here}): section missing or dropped from the image"));
                                    continue;
                                }
                            }
                        };
                        if auth.is_none() && !obj.is_rust() && in_code(target) {
                            errors.push(format!("plain pointer to code {sym_name} ({here}): the kernel authenticates the function pointers it calls; in C they must be signed (clang-22 -mkernel for arm64e)"));
                            continue;
                        }
                        let Some(ord) = a.ordinal_of(target) else {
                            errors.push(format!("pointer to {sym_name} ({here}): target {target:#x} outside every section"));
                            continue;
                        };
                        low.writes.push((o, at, target.to_le_bytes().to_vec()));
                        low.fixups.push(Fixup::Rebase { site: p, target, section: ord, auth });
                        low.refs.push(Ref { kind: RefKind::Pointer64, from: p, to: target });
                    }
                    other => errors.push(format!(
                        "{} relocation to {sym_name} ({here}): not one of the arm64e relocations a kext may use (docs/kext-build.md 9.3)",
                        if reloc_type_name(other) == "unknown" { format!("type {other}") } else { reloc_type_name(other).to_string() }
                    )),
                }
            }
        }
    }
    check_all(errors)?;
    Ok(low)
}
