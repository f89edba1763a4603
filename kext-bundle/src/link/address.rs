//! Output addresses of input symbols and sections once the layout is known, and what an
//! extern relocation's symbol resolves to: an address in the kext or a kernel import.

use super::layout::Layout;
use super::resolve::Resolved;
use super::short;

/// Where a relocation points.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// Address in the image (unslid).
    Kext(u64),
    Import(String),
}

pub struct Addresses<'a> {
    pub r: &'a Resolved,
    pub layout: &'a Layout,
    spans: Vec<(u64, u64)>,
}

impl<'a> Addresses<'a> {
    pub fn new(r: &'a Resolved, layout: &'a Layout) -> Self {
        Addresses {
            r,
            layout,
            spans: layout.spans(),
        }
    }

    /// (output address of the input section's start, its input address).
    pub fn section_addr(&self, oi: usize, ordinal: u32) -> Option<(u64, u64)> {
        let idx = (ordinal as usize).checked_sub(1)?;
        let (o, off) = self.layout.place.get(&(oi, idx))?;
        Some((self.spans[*o].0 + off, self.r.objs[oi].sections[idx].addr))
    }

    pub fn sym_addr(&self, oi: usize, si: usize) -> Option<u64> {
        let s = &self.r.objs[oi].symbols[si];
        let (out, inp) = self.section_addr(oi, s.n_sect as u32)?;
        Some(out.wrapping_add(s.n_value.wrapping_sub(inp)))
    }

    /// Resolves an extern relocation's symbol.
    pub fn resolve(&self, oi: usize, symnum: u32) -> Result<Target, String> {
        let obj = &self.r.objs[oi];
        let s = obj.symbols.get(symnum as usize).ok_or_else(|| {
            format!(
                "{}: relocation symbol index {symnum} out of range",
                short(&obj.name)
            )
        })?;
        let dropped = || {
            format!(
                "reference to {} ({}): it lies in a section dropped from the image",
                s.name,
                short(&obj.name)
            )
        };
        if s.is_ext() {
            if let Some(g) = self.r.globals.get(&s.name) {
                return self
                    .sym_addr(g.obj, g.sym)
                    .map(Target::Kext)
                    .ok_or_else(dropped);
            }
            if s.is_undefined() {
                return Ok(Target::Import(s.name.clone()));
            }
        }
        if s.is_defined() {
            return self
                .sym_addr(oi, symnum as usize)
                .map(Target::Kext)
                .ok_or_else(dropped);
        }
        Err(format!(
            "reference to {} ({}): unsupported symbol type",
            s.name,
            short(&obj.name)
        ))
    }

    /// The 1-based ordinal of the section containing `addr`, or ending exactly at it
    /// (one-past-the-end pointers).
    pub fn ordinal_of(&self, addr: u64) -> Option<u32> {
        self.spans
            .iter()
            .position(|&(a, size)| addr >= a && addr < a + size.max(1))
            .or_else(|| self.spans.iter().position(|&(a, size)| addr == a + size))
            .map(|i| i as u32 + 1)
    }

    /// The output section holding input section `idx` (0-based) of object `oi`.
    pub fn out_of(&self, oi: usize, idx: usize) -> Option<usize> {
        self.layout.place.get(&(oi, idx)).map(|&(o, _)| o)
    }

    pub fn out_addr(&self, o: usize) -> u64 {
        self.spans[o].0
    }
}
