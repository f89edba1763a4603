//! The output symbol table (spec section 3): locals, then the one external definition
//! (`_kmod_info`), then the undefined kernel imports, matching `LC_DYSYMTAB`'s index ranges.
//! Every other global is demoted to local; STABS and assembler temporaries are dropped.

use super::address::Addresses;
use super::short;
use crate::{err, Result};
use object::macho;
use object::{LittleEndian as LE, U32};
use std::collections::HashMap;

pub struct Symtab {
    pub nlists: Vec<macho::Nlist64<LE>>,
    /// Starts with `" \0"`, padded to 8 bytes.
    pub strtab: Vec<u8>,
    pub nlocal: usize,
    pub nextdef: usize,
    pub undefs: Vec<String>,
    /// Undefined symbol -> its index in the table.
    pub undef_index: HashMap<String, usize>,
}

/// `undef_desc`: the `n_desc` of undefined symbols.
pub fn build(a: &Addresses, undef_desc: u16) -> Result<Symtab> {
    let objs = &a.r.objs;
    let outs = &a.layout.outs;
    let mut locals: Vec<(String, u8, u64)> = Vec::new(); // name, n_sect, value
    let mut extdefs: Vec<(String, u8, u64)> = Vec::new();
    for (oi, obj) in objs.iter().enumerate() {
        for (si, s) in obj.symbols.iter().enumerate() {
            if !s.is_defined() || s.is_temporary() {
                continue;
            }
            if s.is_ext()
                && a.r
                    .globals
                    .get(&s.name)
                    .is_none_or(|g| g.obj != oi || g.sym != si)
            {
                continue; // a weak definition that lost
            }
            let Some(addr) = a.sym_addr(oi, si) else {
                continue;
            }; // dropped section
            let Some(ord) = a.ordinal_of(addr) else {
                continue;
            };
            let ord = a
                .out_of(oi, s.n_sect as usize - 1)
                .map(|o| o as u32 + 1)
                .unwrap_or(ord);
            if s.is_ext() && s.name == "_kmod_info" {
                if outs[ord as usize - 1].segname != "__DATA" {
                    return Err(err!(
                        "_kmod_info ({}): must be defined in __DATA, not {}",
                        short(&obj.name),
                        outs[ord as usize - 1].sectname
                    ));
                }
                extdefs.push((s.name.clone(), ord as u8, addr));
            } else {
                locals.push((s.name.clone(), ord as u8, addr));
            }
        }
    }
    if outs.len() > 255 {
        return Err(err!("too many output sections ({})", outs.len()));
    }
    let undefs: Vec<String> = a.r.imports.keys().cloned().collect();
    let nlocal = locals.len();
    let nextdef = extdefs.len();
    let undef_index: HashMap<String, usize> = undefs
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), nlocal + nextdef + i))
        .collect();
    let mut strtab: Vec<u8> = b" \0".to_vec();
    let mut nlists: Vec<macho::Nlist64<LE>> = Vec::new();
    let mut add_sym = |name: &str, n_type: u8, n_sect: u8, n_desc: u16, value: u64| {
        let strx = strtab.len() as u32;
        strtab.extend_from_slice(name.as_bytes());
        strtab.push(0);
        nlists.push(macho::Nlist64 {
            n_strx: U32::new(LE, strx),
            n_type,
            n_sect,
            n_desc: object::U16::new(LE, n_desc),
            n_value: object::U64Bytes::new(LE, value),
        });
    };
    for (n, sect, v) in &locals {
        add_sym(n, macho::N_SECT, *sect, 0, *v);
    }
    for (n, sect, v) in &extdefs {
        add_sym(n, macho::N_SECT | macho::N_EXT, *sect, 0, *v);
    }
    for n in &undefs {
        add_sym(n, macho::N_UNDF | macho::N_EXT, 0, undef_desc, 0);
    }
    while !strtab.len().is_multiple_of(8) {
        strtab.push(0);
    }
    Ok(Symtab {
        nlists,
        strtab,
        nlocal,
        nextdef,
        undefs,
        undef_index,
    })
}
