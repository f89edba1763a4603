//! Layout: which output section every kept input section goes to, and where each output
//! section and segment lies. The architecture supplies a [`Plan`] (its segments, page size,
//! the sections the linker makes itself); the rules here are the same for every architecture:
//!
//! * segments in plan order, the first at address 0 holding the mach header, load commands
//!   and [`HEADER_PAD`] bytes of padding;
//! * within a segment: `__text` inputs first, then the synthesized sections (GOT, stubs),
//!   then the other initialised sections in order of first appearance, zerofill last;
//! * every segment starts on a page boundary of the plan's page size; file offsets follow
//!   file sizes, so a zerofill tail takes no file space.

use super::resolve::is_dropped;
use super::short;
use crate::consts::HEADER_PAD;
use crate::input::InObject;
use crate::{align_up, err, Result};
use object::macho;
use std::collections::HashMap;

pub struct OutSection {
    pub segname: &'static str,
    pub sectname: String,
    pub flags: u32,
    pub align: u32,
    pub addr: u64,
    pub size: u64,
    pub data: Vec<u8>,
    /// `reserved1`/`reserved2` of the section header (indirect-symbol index, stub size).
    pub reserved1: u32,
    pub reserved2: u32,
}

impl OutSection {
    pub fn zerofill(&self) -> bool {
        matches!(
            self.flags & macho::SECTION_TYPE,
            macho::S_ZEROFILL | macho::S_GB_ZEROFILL
        )
    }
}

/// A section the linker makes itself (GOT, stubs), of a size known before layout.
pub struct Synthesized {
    pub segname: &'static str,
    pub sectname: &'static str,
    pub flags: u32,
    /// log2
    pub align: u32,
    pub size: u64,
    pub reserved2: u32,
}

/// What an architecture decides about its image's layout.
pub struct Plan {
    pub page: u64,
    /// Segments before `__LINKEDIT`, in address order: (name, protection).
    pub segments: &'static [(&'static str, u32)],
    /// Output segment of a kept input section.
    pub segment_of: fn(seg: &str, sect: &str, flags: u32) -> &'static str,
    /// Created only when their size is not 0.
    pub synthesized: Vec<Synthesized>,
    /// Bytes of the load commands other than `LC_SEGMENT_64`s.
    pub other_commands_size: u64,
    /// Padding between code inputs.
    pub code_fill: u8,
}

#[derive(Clone, Debug)]
pub struct SegLayout {
    pub name: &'static str,
    pub prot: u32,
    pub vmaddr: u64,
    pub vmsize: u64,
    pub fileoff: u64,
    pub filesize: u64,
}

pub struct Layout {
    /// Output sections in address order: a section's ordinal is its index + 1.
    pub outs: Vec<OutSection>,
    /// (object, section index) -> (output section, offset in it).
    pub place: HashMap<(usize, usize), (usize, u64)>,
    /// Segments before `__LINKEDIT`.
    pub segments: Vec<SegLayout>,
    pub sizeofcmds: u64,
    pub header_end: u64,
    /// Where `__LINKEDIT` starts in memory and in the file.
    pub linkedit_vmaddr: u64,
    pub linkedit_fileoff: u64,
}

impl Layout {
    /// The output section named `sect`, if it exists.
    pub fn out_index(&self, sect: &str) -> Option<usize> {
        self.outs.iter().position(|o| o.sectname == sect)
    }

    /// (address, size) of every output section, by index.
    pub fn spans(&self) -> Vec<(u64, u64)> {
        self.outs.iter().map(|o| (o.addr, o.size)).collect()
    }

    /// The segment a section belongs to.
    pub fn segment(&self, name: &str) -> Option<&SegLayout> {
        self.segments.iter().find(|s| s.name == name)
    }
}

/// Size of one `LC_SEGMENT_64` with `n` sections.
pub fn segment_command_size(n: u64) -> u64 {
    72 + 80 * n
}

pub fn lay_out(objs: &[InObject], plan: &Plan) -> Result<Layout> {
    // Kept input sections of each segment, in link order, split by role.
    let nseg = plan.segments.len();
    let mut text: Vec<Vec<(usize, usize)>> = vec![Vec::new(); nseg];
    let mut regular: Vec<Vec<(usize, usize)>> = vec![Vec::new(); nseg];
    let mut zero: Vec<Vec<(usize, usize)>> = vec![Vec::new(); nseg];
    let seg_index = |name: &str| plan.segments.iter().position(|(n, _)| *n == name);
    for (oi, obj) in objs.iter().enumerate() {
        for (idx, sect) in obj.sections.iter().enumerate() {
            if is_dropped(&sect.segname, &sect.sectname, sect.flags) {
                continue;
            }
            let seg = (plan.segment_of)(&sect.segname, &sect.sectname, sect.flags);
            let si = seg_index(seg).expect("the plan names its own segments");
            if sect.sectname == "__text" && !sect.is_zerofill() {
                text[si].push((oi, idx));
            } else if sect.is_zerofill() {
                zero[si].push((oi, idx));
            } else {
                regular[si].push((oi, idx));
            }
        }
    }
    // A zerofill and a regular input section with the same name would end up in one output
    // section; refuse that rather than write zeros to file.
    for si in 0..nseg {
        for &(oi, idx) in &regular[si] {
            let s = &objs[oi].sections[idx];
            if zero[si]
                .iter()
                .any(|&(o2, i2)| objs[o2].sections[i2].sectname == s.sectname)
            {
                return Err(err!(
                    "section {} ({}): both zerofill and regular inputs use this name",
                    s.full_name(),
                    short(&objs[oi].name)
                ));
            }
        }
    }

    // Output sections, created in address order.
    let mut outs: Vec<OutSection> = Vec::new();
    let mut place: HashMap<(usize, usize), (usize, u64)> = HashMap::new();
    let mut synth_at: Vec<(usize, u64)> = Vec::new(); // out index, size
    for (si, &(segname, _)) in plan.segments.iter().enumerate() {
        let add = |outs: &mut Vec<OutSection>, name: &str, flags: u32| -> usize {
            if let Some(i) = outs
                .iter()
                .position(|o| o.segname == segname && o.sectname == name)
            {
                outs[i].flags |= flags & macho::SECTION_ATTRIBUTES;
                return i;
            }
            outs.push(OutSection {
                segname,
                sectname: name.to_string(),
                flags,
                align: 0,
                addr: 0,
                size: 0,
                data: Vec::new(),
                reserved1: 0,
                reserved2: 0,
            });
            outs.len() - 1
        };
        for &(oi, idx) in &text[si] {
            let s = &objs[oi].sections[idx];
            add(&mut outs, &s.sectname, s.flags);
        }
        for syn in plan
            .synthesized
            .iter()
            .filter(|s| s.segname == segname && s.size > 0)
        {
            let o = add(&mut outs, syn.sectname, syn.flags);
            outs[o].align = syn.align;
            outs[o].reserved2 = syn.reserved2;
            synth_at.push((o, syn.size));
        }
        for &(oi, idx) in regular[si].iter().chain(zero[si].iter()) {
            let s = &objs[oi].sections[idx];
            add(&mut outs, &s.sectname, s.flags);
        }
    }

    // Place input sections within their output sections.
    for si in 0..nseg {
        for &(oi, idx) in text[si].iter().chain(&regular[si]).chain(&zero[si]) {
            let s = &objs[oi].sections[idx];
            let seg = plan.segments[si].0;
            let o = outs
                .iter()
                .position(|x| x.segname == seg && x.sectname == s.sectname)
                .expect("added");
            let out = &mut outs[o];
            if s.align > 15 {
                return Err(err!(
                    "section {} ({}): alignment 2^{} too large",
                    s.full_name(),
                    short(&objs[oi].name),
                    s.align
                ));
            }
            out.align = out.align.max(s.align);
            let off = align_up(out.size, 1 << s.align);
            let fill = if out.flags & macho::S_ATTR_PURE_INSTRUCTIONS != 0 {
                plan.code_fill
            } else {
                0
            };
            if !s.is_zerofill() {
                out.data.resize(off as usize, fill);
                out.data.extend_from_slice(&s.data);
            }
            out.size = off + s.size;
            place.insert((oi, idx), (o, off));
        }
    }
    for (o, size) in synth_at {
        outs[o].size = size;
        outs[o].data = vec![0; size as usize];
    }

    // Addresses.
    let sizeofcmds = plan
        .segments
        .iter()
        .map(|(name, _)| {
            segment_command_size(outs.iter().filter(|o| o.segname == *name).count() as u64)
        })
        .sum::<u64>()
        + segment_command_size(0)
        + plan.other_commands_size;
    let header_end = 32 + sizeofcmds;
    let mut segments = Vec::new();
    let (mut vm_cursor, mut file_cursor) = (0u64, 0u64);
    for (si, &(name, prot)) in plan.segments.iter().enumerate() {
        let start = vm_cursor;
        let mut cursor = if si == 0 {
            header_end + HEADER_PAD
        } else {
            start
        };
        for o in outs
            .iter_mut()
            .filter(|o| o.segname == name && !o.zerofill())
        {
            cursor = align_up(cursor, 1 << o.align);
            o.addr = cursor;
            cursor += o.size;
        }
        let file_end = cursor;
        for o in outs
            .iter_mut()
            .filter(|o| o.segname == name && o.zerofill())
        {
            cursor = align_up(cursor, 1 << o.align);
            o.addr = cursor;
            cursor += o.size;
        }
        let seg = SegLayout {
            name,
            prot,
            vmaddr: start,
            vmsize: align_up(cursor - start, plan.page),
            fileoff: file_cursor,
            filesize: align_up(file_end - start, plan.page),
        };
        vm_cursor = seg.vmaddr + seg.vmsize;
        file_cursor = seg.fileoff + seg.filesize;
        segments.push(seg);
    }
    Ok(Layout {
        outs,
        place,
        segments,
        sizeofcmds,
        header_end,
        linkedit_vmaddr: vm_cursor,
        linkedit_fileoff: file_cursor,
    })
}
