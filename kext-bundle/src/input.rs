//! Reading the linker's inputs: Mach-O x86_64 and arm64(e) relocatable objects, alone or inside static
//! archives, with `object::read::macho`. Everything is copied into owned structs so that the
//! linker does not carry the input buffers' lifetimes around.

use crate::{err, Result};
use object::macho;
use object::read::macho::{LoadCommandVariant, MachHeader, Nlist as _, Section as _, Segment as _};
use object::LittleEndian as LE;

/// One relocation entry of an input section, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reloc {
    pub address: u32,
    pub symbolnum: u32,
    pub pcrel: bool,
    pub length: u8,
    pub is_extern: bool,
    pub kind: u8,
}

#[derive(Clone, Debug)]
pub struct InSection {
    pub segname: String,
    pub sectname: String,
    pub addr: u64,
    pub size: u64,
    /// log2 alignment
    pub align: u32,
    pub flags: u32,
    /// Empty for zerofill sections.
    pub data: Vec<u8>,
    pub relocs: Vec<Reloc>,
}

impl InSection {
    pub fn section_type(&self) -> u32 {
        self.flags & macho::SECTION_TYPE
    }
    pub fn is_zerofill(&self) -> bool {
        matches!(
            self.section_type(),
            macho::S_ZEROFILL | macho::S_GB_ZEROFILL
        )
    }
    pub fn full_name(&self) -> String {
        format!("{},{}", self.segname, self.sectname)
    }
}

#[derive(Clone, Debug)]
pub struct InSymbol {
    pub name: String,
    pub n_type: u8,
    /// 1-based section ordinal, 0 if none
    pub n_sect: u8,
    pub n_desc: u16,
    pub n_value: u64,
}

impl InSymbol {
    pub fn is_stab(&self) -> bool {
        self.n_type & macho::N_STAB != 0
    }
    pub fn kind(&self) -> u8 {
        self.n_type & macho::N_TYPE
    }
    pub fn is_ext(&self) -> bool {
        self.n_type & macho::N_EXT != 0
    }
    pub fn is_private_ext(&self) -> bool {
        self.n_type & macho::N_PEXT != 0
    }
    pub fn is_defined(&self) -> bool {
        !self.is_stab() && self.kind() == macho::N_SECT
    }
    /// Undefined and external, value 0 (a value other than 0 is a common symbol).
    pub fn is_undefined(&self) -> bool {
        !self.is_stab() && self.kind() == macho::N_UNDF && self.is_ext() && self.n_value == 0
    }
    pub fn is_common(&self) -> bool {
        !self.is_stab() && self.kind() == macho::N_UNDF && self.is_ext() && self.n_value != 0
    }
    pub fn is_weak_def(&self) -> bool {
        self.n_desc & macho::N_WEAK_DEF != 0
    }
    pub fn is_weak_ref(&self) -> bool {
        self.n_desc & macho::N_WEAK_REF != 0
    }
    /// Assembler temporaries, which never reach the output symbol table.
    pub fn is_temporary(&self) -> bool {
        self.name.starts_with('l') || self.name.starts_with('L') || self.name.is_empty()
    }
}

/// A parsed relocatable object.
#[derive(Clone, Debug)]
pub struct InObject {
    /// `path` or `archive(member)`: used in every message about this object.
    pub name: String,
    pub sections: Vec<InSection>,
    pub symbols: Vec<InSymbol>,
    /// Packed minimum macOS version (xxxx.yy.zz), 0 when the object records none.
    pub min_version: u32,
    pub flags: u32,
    /// `CPU_TYPE_X86_64` or `CPU_TYPE_ARM64`.
    pub cputype: u32,
}

impl InObject {
    /// The section with this 1-based ordinal.
    pub fn section(&self, ordinal: u32) -> Option<&InSection> {
        if ordinal == 0 {
            return None;
        }
        self.sections.get(ordinal as usize - 1)
    }

    /// Whether rustc made this object: its codegen units are named `<crate>-<hash>.<cgu>.rcgu.o`
    /// (also inside an archive, `lib.a(<...>.rcgu.o)`). Everything else is C from clang.
    pub fn is_rust(&self) -> bool {
        self.name.trim_end_matches(')').ends_with(".rcgu.o")
    }
}

fn fixed_name(raw: &[u8; 16]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(16);
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// Whether `data` starts like a 64-bit little-endian Mach-O file.
pub fn is_macho64(data: &[u8]) -> bool {
    data.len() >= 4 && data[..4] == [0xcf, 0xfa, 0xed, 0xfe]
}

/// Parses one x86_64 or arm64 `MH_OBJECT`.
pub fn parse_object(name: &str, data: &[u8]) -> Result<InObject> {
    let header = macho::MachHeader64::<LE>::parse(data, 0)
        .map_err(|e| err!("{name}: not a 64-bit Mach-O object: {e}"))?;
    let endian = header.endian().map_err(|e| err!("{name}: {e}"))?;
    let cputype = header.cputype(endian);
    if cputype != macho::CPU_TYPE_X86_64 && cputype != macho::CPU_TYPE_ARM64 {
        return Err(err!(
            "{name}: cputype {cputype:#x} is neither x86_64 nor arm64"
        ));
    }
    if header.filetype(endian) != macho::MH_OBJECT {
        return Err(err!(
            "{name}: file type {} is not MH_OBJECT (relocatable object)",
            header.filetype(endian)
        ));
    }
    let mut obj = InObject {
        name: name.to_string(),
        sections: Vec::new(),
        symbols: Vec::new(),
        min_version: 0,
        flags: header.flags(endian),
        cputype,
    };
    let mut commands = header
        .load_commands(endian, data, 0)
        .map_err(|e| err!("{name}: {e}"))?;
    while let Some(command) = commands.next().map_err(|e| err!("{name}: {e}"))? {
        match command.variant().map_err(|e| err!("{name}: {e}"))? {
            LoadCommandVariant::Segment64(segment, section_data) => {
                let sections = if segment.nsects.get(endian) == 0 {
                    &[][..]
                } else {
                    segment
                        .sections(endian, section_data)
                        .map_err(|e| err!("{name}: {e}"))?
                };
                for s in sections {
                    let sect_data = s
                        .data(endian, data)
                        .map_err(|_| err!("{name}: section data out of bounds"))?;
                    // (object 0.37 refuses an empty relocation slice: its dangling pointer is
                    // not 4-aligned)
                    let relocs = if s.nreloc.get(endian) == 0 {
                        &[][..]
                    } else {
                        s.relocations(endian, data)
                            .map_err(|e| err!("{name}: {e}"))?
                    };
                    let mut rs = Vec::with_capacity(relocs.len());
                    for r in relocs {
                        // (64-bit architectures have no scattered relocations)
                        let i = r.info(endian);
                        rs.push(Reloc {
                            address: i.r_address,
                            symbolnum: i.r_symbolnum,
                            pcrel: i.r_pcrel,
                            length: i.r_length,
                            is_extern: i.r_extern,
                            kind: i.r_type,
                        });
                    }
                    obj.sections.push(InSection {
                        segname: fixed_name(&s.segname),
                        sectname: fixed_name(&s.sectname),
                        addr: s.addr.get(endian),
                        size: s.size.get(endian),
                        align: s.align.get(endian),
                        flags: s.flags.get(endian),
                        data: sect_data.to_vec(),
                        relocs: rs,
                    });
                }
            }
            LoadCommandVariant::Symtab(symtab) if symtab.nsyms.get(endian) > 0 => {
                let table = symtab
                    .symbols::<macho::MachHeader64<LE>, _>(endian, data)
                    .map_err(|e| err!("{name}: {e}"))?;
                let strings = table.strings();
                for nl in table.iter() {
                    let sym_name = nl
                        .name(endian, strings)
                        .map_err(|e| err!("{name}: symbol name: {e}"))?;
                    obj.symbols.push(InSymbol {
                        name: String::from_utf8_lossy(sym_name).into_owned(),
                        n_type: nl.n_type(),
                        n_sect: nl.n_sect(),
                        n_desc: nl.n_desc(endian),
                        n_value: nl.n_value(endian),
                    });
                }
            }
            LoadCommandVariant::VersionMin(v) if command.cmd() == macho::LC_VERSION_MIN_MACOSX => {
                obj.min_version = v.version.get(endian);
            }
            LoadCommandVariant::BuildVersion(v)
                if v.platform.get(endian) == macho::PLATFORM_MACOS =>
            {
                obj.min_version = v.minos.get(endian);
            }
            _ => {}
        }
    }
    Ok(obj)
}

/// One input file: an object that is always linked, or an archive whose members are linked
/// on demand.
pub enum Input {
    Object(InObject),
    Archive {
        name: String,
        members: Vec<InObject>,
    },
}

/// Reads a file given on the command line: an archive (`!<arch>`) or a Mach-O object.
pub fn read_input(path: &str) -> Result<Input> {
    let data = std::fs::read(path).map_err(|e| err!("{path}: {e}"))?;
    parse_input(path, &data)
}

pub fn parse_input(path: &str, data: &[u8]) -> Result<Input> {
    if data.starts_with(b"!<arch>\n") {
        let archive = object::read::archive::ArchiveFile::parse(data)
            .map_err(|e| err!("{path}: bad archive: {e}"))?;
        let mut members = Vec::new();
        for member in archive.members() {
            let member = member.map_err(|e| err!("{path}: bad archive member: {e}"))?;
            let mname = String::from_utf8_lossy(member.name()).into_owned();
            if mname.starts_with("__.SYMDEF") {
                continue;
            }
            let mdata = member
                .data(data)
                .map_err(|e| err!("{path}({mname}): {e}"))?;
            // Members that are not Mach-O (rustc metadata, for instance) define no symbols.
            if !is_macho64(mdata) {
                continue;
            }
            // Copied first: a member's data need not be aligned within the archive.
            let owned = mdata.to_vec();
            members.push(parse_object(&format!("{path}({mname})"), &owned)?);
        }
        Ok(Input::Archive {
            name: path.to_string(),
            members,
        })
    } else {
        Ok(Input::Object(parse_object(path, data)?))
    }
}
