//! Universal (fat) executables: a big-endian `fat_header` and one `fat_arch` per slice, each
//! slice on a 16 KiB boundary (what `lipo` does for arm64), so that one bundle carries the
//! x86_64 and arm64e kexts. The arm64e slice keeps its subtype (0xC0000002) in its `fat_arch`.

use crate::{err, Result};
use object::macho;

/// log2 of the slice alignment.
pub const SLICE_ALIGN: u32 = 14;

pub struct Slice<'a> {
    pub cputype: u32,
    pub cpusubtype: u32,
    pub data: &'a [u8],
}

/// Reads cputype and cpusubtype from a thin Mach-O header.
pub fn thin_arch(data: &[u8]) -> Result<(u32, u32)> {
    let word = |o: usize| {
        data.get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .ok_or_else(|| err!("not a Mach-O file"))
    };
    if word(0)? != macho::MH_MAGIC_64 {
        return Err(err!("not a 64-bit little-endian Mach-O file"));
    }
    Ok((word(4)?, word(8)?))
}

pub fn write(slices: &[Slice]) -> Vec<u8> {
    let align = 1usize << SLICE_ALIGN;
    let mut out = Vec::new();
    out.extend_from_slice(&macho::FAT_MAGIC.to_be_bytes());
    out.extend_from_slice(&(slices.len() as u32).to_be_bytes());
    let mut offset = align;
    let mut offsets = Vec::new();
    for s in slices {
        offsets.push(offset);
        for v in [
            s.cputype,
            s.cpusubtype,
            offset as u32,
            s.data.len() as u32,
            SLICE_ALIGN,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        offset = (offset + s.data.len()).div_ceil(align) * align;
    }
    for (s, off) in slices.iter().zip(offsets) {
        out.resize(off, 0);
        out.extend_from_slice(s.data);
    }
    out
}

/// The slices of a fat file; `None` if `data` is not one.
pub fn slices(data: &[u8]) -> Result<Option<Vec<Slice<'_>>>> {
    let be = |o: usize| {
        data.get(o..o + 4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
            .ok_or_else(|| err!("fat header truncated"))
    };
    if data.len() < 8 || be(0)? != macho::FAT_MAGIC {
        return Ok(None);
    }
    let mut out = Vec::new();
    for i in 0..be(4)? as usize {
        let a = 8 + 20 * i;
        let (off, size) = (be(a + 8)? as usize, be(a + 12)? as usize);
        let data = data
            .get(off..off + size)
            .ok_or_else(|| err!("fat slice {i} out of file bounds"))?;
        out.push(Slice {
            cputype: be(a)?,
            cpusubtype: be(a + 4)?,
            data,
        });
    }
    Ok(Some(out))
}
