//! Classic relocations for x86_64 kexts (spec section 3), reached only through
//! `LC_DYSYMTAB`: local `UNSIGNED` quads for rebases (by address), extern `BRANCH` (calls)
//! and `UNSIGNED` (pointers) for binds (by symbol index, then address, as ld64 orders them).

use super::super::arch::x86_64::rt;
use super::super::fixup::Fixup;
use super::super::symtab::Symtab;
use crate::{err, Result};
use object::macho;
use object::pod::bytes_of;
use object::LittleEndian as LE;

pub struct Classic {
    pub local: Vec<u8>,
    pub nlocal: usize,
    pub external: Vec<u8>,
    pub nextern: usize,
}

fn reloc_bytes(
    address: u64,
    symbolnum: u32,
    pcrel: bool,
    length: u8,
    is_extern: bool,
    kind: u8,
) -> Vec<u8> {
    let info = macho::RelocationInfo {
        r_address: address as u32,
        r_symbolnum: symbolnum,
        r_pcrel: pcrel,
        r_length: length,
        r_extern: is_extern,
        r_type: kind,
    };
    bytes_of(&info.relocation(LE)).to_vec()
}

pub fn encode(fixups: &[Fixup], symtab: &Symtab) -> Result<Classic> {
    let mut loc: Vec<(u64, u32)> = Vec::new();
    let mut ext: Vec<(usize, u64, bool)> = Vec::new(); // symbol index, address, call
    for f in fixups {
        match f {
            Fixup::Rebase { site, section, .. } => loc.push((*site, *section)),
            Fixup::Bind {
                site, name, call, ..
            } => ext.push((symtab.undef_index[name.as_str()], *site, *call)),
        }
    }
    ext.sort_by_key(|&(i, a, _)| (i, a));
    loc.sort();
    for w in loc.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(err!("two relocations at image offset {:#x}", w[0].0));
        }
    }
    let mut local = Vec::new();
    for &(a, ord) in &loc {
        local.extend(reloc_bytes(a, ord, false, 3, false, rt::UNSIGNED));
    }
    let mut external = Vec::new();
    for &(sym, a, call) in &ext {
        let (pcrel, len, kind) = if call {
            (true, 2, rt::BRANCH)
        } else {
            (false, 3, rt::UNSIGNED)
        };
        external.extend(reloc_bytes(a, sym as u32, pcrel, len, true, kind));
    }
    Ok(Classic {
        local,
        nlocal: loc.len(),
        external,
        nextern: ext.len(),
    })
}
