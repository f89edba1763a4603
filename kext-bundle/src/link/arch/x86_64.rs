//! x86_64: relocation lowering and encoding (spec section 3). Every input relocation becomes
//! bytes written into the image and, where the loader must act, an abstract [`Fixup`]; the
//! classic-relocation emitter turns those into `relocation_info` entries.

use super::super::address::{Addresses, Target};
use super::super::fixup::{Fixup, Lowered};
use super::super::resolve::{is_dropped, Resolved};
use super::super::short;
use crate::check_all;
use crate::input::{InSymbol, Reloc};
use std::collections::HashMap;

/// x86_64 relocation types.
pub mod rt {
    pub const UNSIGNED: u8 = 0;
    pub const SIGNED: u8 = 1;
    pub const BRANCH: u8 = 2;
    pub const GOT_LOAD: u8 = 3;
    pub const GOT: u8 = 4;
    pub const SUBTRACTOR: u8 = 5;
    pub const SIGNED_1: u8 = 6;
    pub const SIGNED_2: u8 = 7;
    pub const SIGNED_4: u8 = 8;
    pub const TLV: u8 = 9;
}

pub fn reloc_type_name(t: u8) -> &'static str {
    match t {
        rt::UNSIGNED => "UNSIGNED",
        rt::SIGNED => "SIGNED",
        rt::BRANCH => "BRANCH",
        rt::GOT_LOAD => "GOT_LOAD",
        rt::GOT => "GOT",
        rt::SUBTRACTOR => "SUBTRACTOR",
        rt::SIGNED_1 => "SIGNED_1",
        rt::SIGNED_2 => "SIGNED_2",
        rt::SIGNED_4 => "SIGNED_4",
        rt::TLV => "TLV",
        _ => "unknown",
    }
}

/// The GOT the linker synthesizes: one 8-byte slot per symbol reached through `GOT`/`GOT_LOAD`.
pub struct Got {
    /// key, object and symbol of the first use, in slot order
    pub slots: Vec<(String, usize, usize)>,
    pub index: HashMap<String, usize>,
}

/// Key of a GOT slot: the global name, or `#obj#sym` for a symbol local to one object.
fn sym_key(oi: usize, si: usize, s: &InSymbol) -> String {
    if s.is_ext() {
        s.name.clone()
    } else {
        format!("#{oi}#{si}")
    }
}

pub fn got_slots(r: &Resolved) -> Got {
    let objs = &r.objs;
    let mut got: Vec<(String, usize, usize)> = Vec::new(); // key, obj, sym of first use
    let mut got_index: HashMap<String, usize> = HashMap::new();
    for (oi, obj) in objs.iter().enumerate() {
        for sect in &obj.sections {
            if is_dropped(&sect.segname, &sect.sectname, sect.flags) {
                continue;
            }
            for r in &sect.relocs {
                if (r.kind == rt::GOT || r.kind == rt::GOT_LOAD) && r.is_extern {
                    if let Some(s) = obj.symbols.get(r.symbolnum as usize) {
                        let key = sym_key(oi, r.symbolnum as usize, s);
                        if !got_index.contains_key(&key) {
                            got_index.insert(key.clone(), got.len());
                            got.push((key, oi, r.symbolnum as usize));
                        }
                    }
                }
            }
        }
    }
    Got {
        slots: got,
        index: got_index,
    }
}

/// Lowers every relocation of the linked objects; `got_out` is the `__got` output section.
pub fn lower(a: &Addresses, got: &Got, got_out: Option<usize>) -> crate::Result<Lowered> {
    let objs = &a.r.objs;
    let mut errors: Vec<String> = Vec::new();
    let mut fixups: Vec<Fixup> = Vec::new();
    let mut writes: Vec<(usize, usize, Vec<u8>)> = Vec::new(); // out section, offset, bytes
    if let Some(g) = got_out {
        for (i, (key, oi, si)) in got.slots.iter().enumerate() {
            let slot = a.out_addr(g) + 8 * i as u64;
            match a.resolve(*oi, *si as u32) {
                Ok(Target::Import(name)) => fixups.push(Fixup::Bind {
                    site: slot,
                    name,
                    call: false,
                    auth: None,
                }),
                Ok(Target::Kext(t)) => {
                    writes.push((g, 8 * i, t.to_le_bytes().to_vec()));
                    match a.ordinal_of(t) {
                        Some(ord) => fixups.push(Fixup::rebase(slot, t, ord)),
                        None => errors.push(format!(
                            "GOT entry for {key}: target {t:#x} outside every section"
                        )),
                    }
                }
                Err(e) => errors.push(e),
            }
        }
    }

    for (oi, obj) in objs.iter().enumerate() {
        let oname = short(&obj.name);
        for (idx, sect) in obj.sections.iter().enumerate() {
            let Some(&(o, base_off)) = a.layout.place.get(&(oi, idx)) else {
                continue;
            };
            let site_sect_out = a.out_addr(o) + base_off;
            let delta_site = site_sect_out.wrapping_sub(sect.addr);
            let mut i = 0;
            while i < sect.relocs.len() {
                let r = sect.relocs[i];
                i += 1;
                let off = r.address as u64;
                let width = 1u64 << r.length;
                if off + width > sect.size || sect.is_zerofill() {
                    errors.push(format!(
                        "{oname}: relocation at {}+{off:#x} outside the section",
                        sect.full_name()
                    ));
                    continue;
                }
                let p_out = site_sect_out + off; // address of the fixup in the image
                let content: i64 = match r.length {
                    2 => i32::from_le_bytes(
                        sect.data[off as usize..off as usize + 4]
                            .try_into()
                            .unwrap(),
                    ) as i64,
                    3 => i64::from_le_bytes(
                        sect.data[off as usize..off as usize + 8]
                            .try_into()
                            .unwrap(),
                    ),
                    _ => 0,
                };
                let sym_name = |r: &Reloc| -> String {
                    if r.is_extern {
                        obj.symbols
                            .get(r.symbolnum as usize)
                            .map(|s| s.name.clone())
                            .unwrap_or_default()
                    } else {
                        obj.section(r.symbolnum)
                            .map(|s| s.full_name())
                            .unwrap_or_default()
                    }
                };
                let here = format!("{} at {}+{off:#x}", oname, sect.full_name());
                let tname = reloc_type_name(r.kind);
                // Non-extern: the section whose move the content must follow.
                let sect_delta = |ordinal: u32| -> std::result::Result<i64, String> {
                    let (out, inp) = a.section_addr(oi, ordinal).ok_or_else(|| {
                        format!(
                            "{tname} reference to section {} ({here}): section missing or dropped from the image",
                            obj.section(ordinal).map(|s| s.full_name()).unwrap_or_else(|| format!("#{ordinal}"))
                        )
                    })?;
                    Ok(out.wrapping_sub(inp) as i64)
                };
                let mut put32 = |v: i64, what: &str, errors: &mut Vec<String>| {
                    if v < i32::MIN as i64 || v > i32::MAX as i64 {
                        errors.push(format!(
                            "{what} ({here}): 32-bit displacement {v:#x} out of range"
                        ));
                    } else {
                        writes.push((
                            o,
                            (base_off + off) as usize,
                            (v as i32).to_le_bytes().to_vec(),
                        ));
                    }
                };
                match r.kind {
                    rt::TLV => {
                        errors.push(format!("thread-local variable {} ({here}): TLV relocation; the kernel has no TLS", sym_name(&r)));
                    }
                    rt::BRANCH
                    | rt::SIGNED
                    | rt::SIGNED_1
                    | rt::SIGNED_2
                    | rt::SIGNED_4
                    | rt::GOT
                    | rt::GOT_LOAD => {
                        if !r.pcrel || r.length != 2 {
                            errors.push(format!(
                                "{tname} relocation to {} ({here}): must be pc-relative and 32-bit",
                                sym_name(&r)
                            ));
                            continue;
                        }
                        let is_got = r.kind == rt::GOT || r.kind == rt::GOT_LOAD;
                        if is_got {
                            if !r.is_extern {
                                errors.push(format!("{tname} relocation ({here}): non-extern GOT reference is unsupported"));
                                continue;
                            }
                            let s = &obj.symbols[r.symbolnum as usize];
                            let key = sym_key(oi, r.symbolnum as usize, s);
                            let slot =
                                a.out_addr(got_out.expect("got")) + 8 * got.index[&key] as u64;
                            let v = (slot as i64) + content - (p_out as i64 + 4);
                            put32(v, &format!("GOT reference to {}", s.name), &mut errors);
                            continue;
                        }
                        if r.is_extern {
                            match a.resolve(oi, r.symbolnum) {
                                Err(e) => errors.push(e),
                                Ok(Target::Import(name)) => {
                                    if r.kind != rt::BRANCH {
                                        errors.push(format!(
                                            "{tname} data reference to kernel symbol {name} ({here}): only calls (BRANCH) and GOT loads may reach the kernel"
                                        ));
                                    } else if content != 0 {
                                        errors.push(format!("call to kernel symbol {name} ({here}): non-zero addend {content} on an import"));
                                    } else {
                                        writes.push((o, (base_off + off) as usize, vec![0; 4]));
                                        fixups.push(Fixup::Bind {
                                            site: p_out,
                                            name,
                                            call: true,
                                            auth: None,
                                        });
                                    }
                                }
                                Ok(Target::Kext(t)) => {
                                    let v = (t as i64) + content - (p_out as i64 + 4);
                                    put32(
                                        v,
                                        &format!("{tname} reference to {}", sym_name(&r)),
                                        &mut errors,
                                    );
                                }
                            }
                        } else {
                            match sect_delta(r.symbolnum) {
                                Err(e) => errors.push(e),
                                Ok(d) => {
                                    let v = content + d - delta_site as i64;
                                    put32(
                                        v,
                                        &format!("{tname} reference to {}", sym_name(&r)),
                                        &mut errors,
                                    );
                                }
                            }
                        }
                    }
                    rt::UNSIGNED => {
                        if r.pcrel {
                            errors.push(format!(
                                "UNSIGNED relocation to {} ({here}): pc-relative is invalid",
                                sym_name(&r)
                            ));
                            continue;
                        }
                        if r.length != 3 {
                            errors.push(format!(
                                "32-bit absolute pointer to {} ({here}): kexts load above 4 GiB, only 64-bit pointers can be relocated",
                                sym_name(&r)
                            ));
                            continue;
                        }
                        let target = if r.is_extern {
                            match a.resolve(oi, r.symbolnum) {
                                Err(e) => {
                                    errors.push(e);
                                    continue;
                                }
                                Ok(Target::Import(name)) => {
                                    if content != 0 {
                                        errors.push(format!("pointer to kernel symbol {name} ({here}): non-zero addend {content} on an import"));
                                    } else {
                                        writes.push((o, (base_off + off) as usize, vec![0; 8]));
                                        fixups.push(Fixup::Bind {
                                            site: p_out,
                                            name,
                                            call: false,
                                            auth: None,
                                        });
                                    }
                                    continue;
                                }
                                Ok(Target::Kext(t)) => (t as i64).wrapping_add(content) as u64,
                            }
                        } else {
                            match sect_delta(r.symbolnum) {
                                Err(e) => {
                                    errors.push(e);
                                    continue;
                                }
                                Ok(d) => content.wrapping_add(d) as u64,
                            }
                        };
                        writes.push((o, (base_off + off) as usize, target.to_le_bytes().to_vec()));
                        // The section the pointer lands in: for non-extern, the named section.
                        let ord = if r.is_extern {
                            a.ordinal_of(target)
                        } else {
                            a.out_of(oi, r.symbolnum as usize - 1)
                                .map(|o2| o2 as u32 + 1)
                        };
                        match ord {
                            Some(ord) => fixups.push(Fixup::rebase(p_out, target, ord)),
                            None => errors.push(format!(
                                "pointer to {} ({here}): target {target:#x} outside every section",
                                sym_name(&r)
                            )),
                        }
                    }
                    rt::SUBTRACTOR => {
                        let Some(&next) = sect.relocs.get(i) else {
                            errors.push(format!("SUBTRACTOR ({here}): not followed by UNSIGNED"));
                            continue;
                        };
                        i += 1;
                        if next.kind != rt::UNSIGNED
                            || next.address != r.address
                            || next.length != r.length
                            || r.pcrel
                            || next.pcrel
                        {
                            errors.push(format!("SUBTRACTOR ({here}): must pair with an UNSIGNED of the same site and length, not pc-relative"));
                            continue;
                        }
                        if r.length != 2 && r.length != 3 {
                            errors.push(format!(
                                "SUBTRACTOR ({here}): length {} unsupported",
                                1 << r.length
                            ));
                            continue;
                        }
                        let side = |rr: &Reloc| -> std::result::Result<i64, String> {
                            if rr.is_extern {
                                match a.resolve(oi, rr.symbolnum)? {
                                    Target::Kext(t) => Ok(t as i64),
                                    Target::Import(name) => Err(format!(
                                        "difference with kernel symbol {name} ({here}): SUBTRACTOR with an import is unsupported"
                                    )),
                                }
                            } else {
                                sect_delta(rr.symbolnum)
                            }
                        };
                        match (side(&next), side(&r)) {
                            (Ok(a), Ok(b)) => {
                                let v = content.wrapping_add(a).wrapping_sub(b);
                                if r.length == 2 {
                                    put32(
                                        v,
                                        &format!(
                                            "difference {} - {}",
                                            sym_name(&next),
                                            sym_name(&r)
                                        ),
                                        &mut errors,
                                    );
                                } else {
                                    writes.push((
                                        o,
                                        (base_off + off) as usize,
                                        v.to_le_bytes().to_vec(),
                                    ));
                                }
                            }
                            (Err(e), _) | (_, Err(e)) => errors.push(e),
                        }
                    }
                    other => errors.push(format!(
                        "relocation type {other} to {} ({here}): unsupported relocation type",
                        sym_name(&r)
                    )),
                }
            }
        }
    }
    check_all(errors)?;
    Ok(Lowered {
        writes,
        fixups,
        refs: Vec::new(),
    })
}
