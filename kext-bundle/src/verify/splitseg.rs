//! Reading (and, for the verifier's own negative tests, rewriting) `LC_SEGMENT_SPLIT_INFO` v2,
//! as dyld's `SplitSegInfo::forEachReferenceV2` reads it.

use crate::{err, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: u8,
    pub from_section: u64,
    pub from_offset: u64,
    pub to_section: u64,
    pub to_offset: u64,
}

fn read_uleb(b: &[u8], p: &mut usize) -> Result<u64> {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = *b
            .get(*p)
            .ok_or_else(|| err!("split-seg info: truncated ULEB128"))?;
        *p += 1;
        if shift > 63 {
            return Err(err!("split-seg info: ULEB128 too long"));
        }
        v |= ((byte & 0x7F) as u64) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
        shift += 7;
    }
}

pub fn parse(blob: &[u8]) -> Result<Vec<Entry>> {
    if blob.first() != Some(&0x7F) {
        return Err(err!("split-seg info is not v2 (no 0x7F marker)"));
    }
    let mut p = 1;
    let mut out = Vec::new();
    for _ in 0..read_uleb(blob, &mut p)? {
        let from_section = read_uleb(blob, &mut p)?;
        let to_section = read_uleb(blob, &mut p)?;
        let mut to_offset = 0;
        for _ in 0..read_uleb(blob, &mut p)? {
            to_offset += read_uleb(blob, &mut p)?;
            for _ in 0..read_uleb(blob, &mut p)? {
                let kind = read_uleb(blob, &mut p)?;
                if kind > 13 {
                    return Err(err!("split-seg info: unknown kind {kind}"));
                }
                let mut from_offset = 0;
                for _ in 0..read_uleb(blob, &mut p)? {
                    from_offset += read_uleb(blob, &mut p)?;
                    out.push(Entry {
                        kind: kind as u8,
                        from_section,
                        from_offset,
                        to_section,
                        to_offset,
                    });
                }
            }
        }
    }
    Ok(out)
}

fn put_uleb(mut v: u64, out: &mut Vec<u8>) {
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

/// Encodes entries one group per entry (valid v2, not compact): enough to rewrite an
/// image's split-seg info in a test.
pub fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = vec![0x7F];
    put_uleb(entries.len() as u64, &mut out);
    for e in entries {
        for v in [
            e.from_section,
            e.to_section,
            1,
            e.to_offset,
            1,
            e.kind as u64,
            1,
            e.from_offset,
        ] {
            put_uleb(v, &mut out);
        }
    }
    out.push(0);
    out
}
