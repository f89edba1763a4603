//! A linked kext read back with `object::read::macho`, for the verifier and for the linker's
//! own kmod_info check.

use crate::input::{InSymbol, Reloc};
use crate::{err, Result};
use object::macho;
use object::read::macho::{MachHeader, Nlist as _};
use object::LittleEndian as LE;

#[derive(Clone, Debug)]
pub struct Sect {
    pub segname: String,
    pub sectname: String,
    pub addr: u64,
    pub size: u64,
    pub offset: u32,
    pub align: u32,
    pub reloff: u32,
    pub nreloc: u32,
    pub flags: u32,
}

impl Sect {
    pub fn zerofill(&self) -> bool {
        matches!(
            self.flags & macho::SECTION_TYPE,
            macho::S_ZEROFILL | macho::S_GB_ZEROFILL
        )
    }
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.addr && addr < self.addr + self.size
    }
}

#[derive(Clone, Debug)]
pub struct Seg {
    pub name: String,
    pub vmaddr: u64,
    pub vmsize: u64,
    pub fileoff: u64,
    pub filesize: u64,
    pub maxprot: u32,
    pub initprot: u32,
    pub nsects: u32,
}

#[derive(Clone, Debug, Default)]
pub struct Dysymtab {
    pub ilocalsym: u32,
    pub nlocalsym: u32,
    pub iextdefsym: u32,
    pub nextdefsym: u32,
    pub iundefsym: u32,
    pub nundefsym: u32,
    pub nindirectsyms: u32,
    pub ntoc: u32,
    pub nmodtab: u32,
    pub nextrefsyms: u32,
    pub extreloff: u32,
    pub nextrel: u32,
    pub locreloff: u32,
    pub nlocrel: u32,
}

#[derive(Clone, Debug)]
pub struct Image {
    pub data: Vec<u8>,
    pub cputype: u32,
    pub cpusubtype: u32,
    pub filetype: u32,
    pub flags: u32,
    pub sizeofcmds: u32,
    /// (cmd, cmdsize) in file order
    pub commands: Vec<(u32, u32)>,
    pub segments: Vec<Seg>,
    /// All sections in load-command order; a section's ordinal is its index + 1.
    pub sections: Vec<Sect>,
    pub symbols: Vec<InSymbol>,
    pub dysymtab: Option<Dysymtab>,
    pub local_relocs: Vec<Reloc>,
    pub extern_relocs: Vec<Reloc>,
    pub uuid: Option<[u8; 16]>,
    pub min_version: Option<u32>,
    pub source_version: Option<u64>,
    /// (dataoff, datasize) of `LC_DYLD_CHAINED_FIXUPS` and `LC_SEGMENT_SPLIT_INFO`.
    pub chained_fixups_cmd: Option<(u32, u32)>,
    pub split_seg_cmd: Option<(u32, u32)>,
    /// The chains, walked (arm64e images).
    pub chains: Option<crate::chains::Chains>,
    /// `LC_DYSYMTAB`'s indirect symbol table.
    pub indirect_symbols: Vec<u32>,
}

fn fixed_name(raw: &[u8; 16]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(16);
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

fn read_relocs(data: &[u8], off: u32, n: u32, what: &str) -> Result<Vec<Reloc>> {
    let mut out = Vec::new();
    for i in 0..n as usize {
        let at = off as usize + 8 * i;
        let chunk = data
            .get(at..at + 8)
            .ok_or_else(|| err!("{what} relocations out of file bounds"))?;
        let r: &macho::Relocation<LE> = object::pod::from_bytes(chunk)
            .map_err(|_| err!("bad relocation"))?
            .0;
        let info = r.info(LE);
        out.push(Reloc {
            address: info.r_address,
            symbolnum: info.r_symbolnum,
            pcrel: info.r_pcrel,
            length: info.r_length,
            is_extern: info.r_extern,
            kind: info.r_type,
        });
    }
    Ok(out)
}

impl Image {
    pub fn parse(data: &[u8]) -> Result<Image> {
        let header = macho::MachHeader64::<LE>::parse(data, 0)
            .map_err(|e| err!("not a 64-bit Mach-O: {e}"))?;
        let endian = header.endian().map_err(|e| err!("{e}"))?;
        let mut img = Image {
            data: data.to_vec(),
            cputype: header.cputype(endian),
            cpusubtype: header.cpusubtype(endian),
            filetype: header.filetype(endian),
            flags: header.flags(endian),
            sizeofcmds: header.sizeofcmds(endian),
            commands: Vec::new(),
            segments: Vec::new(),
            sections: Vec::new(),
            symbols: Vec::new(),
            dysymtab: None,
            local_relocs: Vec::new(),
            extern_relocs: Vec::new(),
            uuid: None,
            min_version: None,
            source_version: None,
            chained_fixups_cmd: None,
            split_seg_cmd: None,
            chains: None,
            indirect_symbols: Vec::new(),
        };
        let mut indirect = (0u32, 0u32);
        let mut commands = header
            .load_commands(endian, data, 0)
            .map_err(|e| err!("{e}"))?;
        while let Some(cmd) = commands.next().map_err(|e| err!("{e}"))? {
            img.commands.push((cmd.cmd(), cmd.cmdsize()));
            match cmd.cmd() {
                macho::LC_SEGMENT_64 => {
                    let (seg, sdata) = cmd.segment_64().map_err(|e| err!("{e}"))?.expect("segment");
                    img.segments.push(Seg {
                        name: fixed_name(&seg.segname),
                        vmaddr: seg.vmaddr.get(endian),
                        vmsize: seg.vmsize.get(endian),
                        fileoff: seg.fileoff.get(endian),
                        filesize: seg.filesize.get(endian),
                        maxprot: seg.maxprot.get(endian),
                        initprot: seg.initprot.get(endian),
                        nsects: seg.nsects.get(endian),
                    });
                    use object::read::macho::Segment as _;
                    let sections = if seg.nsects.get(endian) == 0 {
                        &[][..] // (object 0.37 refuses an empty slice: its pointer is unaligned)
                    } else {
                        seg.sections(endian, sdata).map_err(|e| err!("{e}"))?
                    };
                    for s in sections {
                        img.sections.push(Sect {
                            segname: fixed_name(&s.segname),
                            sectname: fixed_name(&s.sectname),
                            addr: s.addr.get(endian),
                            size: s.size.get(endian),
                            offset: s.offset.get(endian),
                            align: s.align.get(endian),
                            reloff: s.reloff.get(endian),
                            nreloc: s.nreloc.get(endian),
                            flags: s.flags.get(endian),
                        });
                    }
                }
                macho::LC_SYMTAB => {
                    let st = cmd.symtab().map_err(|e| err!("{e}"))?.expect("symtab");
                    if st.nsyms.get(endian) == 0 {
                        continue;
                    }
                    let table = st
                        .symbols::<macho::MachHeader64<LE>, _>(endian, data)
                        .map_err(|e| err!("symbol table: {e}"))?;
                    for nl in table.iter() {
                        let name = nl
                            .name(endian, table.strings())
                            .map_err(|e| err!("symbol name: {e}"))?;
                        img.symbols.push(InSymbol {
                            name: String::from_utf8_lossy(name).into_owned(),
                            n_type: nl.n_type(),
                            n_sect: nl.n_sect(),
                            n_desc: nl.n_desc(endian),
                            n_value: nl.n_value(endian),
                        });
                    }
                }
                macho::LC_DYSYMTAB => {
                    let d = cmd.dysymtab().map_err(|e| err!("{e}"))?.expect("dysymtab");
                    let dy = Dysymtab {
                        ilocalsym: d.ilocalsym.get(endian),
                        nlocalsym: d.nlocalsym.get(endian),
                        iextdefsym: d.iextdefsym.get(endian),
                        nextdefsym: d.nextdefsym.get(endian),
                        iundefsym: d.iundefsym.get(endian),
                        nundefsym: d.nundefsym.get(endian),
                        nindirectsyms: d.nindirectsyms.get(endian),
                        ntoc: d.ntoc.get(endian),
                        nmodtab: d.nmodtab.get(endian),
                        nextrefsyms: d.nextrefsyms.get(endian),
                        extreloff: d.extreloff.get(endian),
                        nextrel: d.nextrel.get(endian),
                        locreloff: d.locreloff.get(endian),
                        nlocrel: d.nlocrel.get(endian),
                    };
                    indirect = (d.indirectsymoff.get(endian), d.nindirectsyms.get(endian));
                    img.local_relocs = read_relocs(data, dy.locreloff, dy.nlocrel, "local")?;
                    img.extern_relocs = read_relocs(data, dy.extreloff, dy.nextrel, "external")?;
                    img.dysymtab = Some(dy);
                }
                macho::LC_DYLD_CHAINED_FIXUPS | macho::LC_SEGMENT_SPLIT_INFO => {
                    let l: &macho::LinkeditDataCommand<LE> = cmd.data().map_err(|e| err!("{e}"))?;
                    let v = Some((l.dataoff.get(endian), l.datasize.get(endian)));
                    if cmd.cmd() == macho::LC_DYLD_CHAINED_FIXUPS {
                        img.chained_fixups_cmd = v;
                    } else {
                        img.split_seg_cmd = v;
                    }
                }
                macho::LC_UUID => {
                    let u = cmd.uuid().map_err(|e| err!("{e}"))?.expect("uuid");
                    img.uuid = Some(u.uuid);
                }
                macho::LC_VERSION_MIN_MACOSX => {
                    let v: &macho::VersionMinCommand<LE> = cmd.data().map_err(|e| err!("{e}"))?;
                    img.min_version = Some(v.version.get(endian));
                }
                macho::LC_BUILD_VERSION => {
                    let v = cmd
                        .build_version()
                        .map_err(|e| err!("{e}"))?
                        .expect("build version");
                    img.min_version = Some(v.minos.get(endian));
                }
                macho::LC_SOURCE_VERSION => {
                    let v: &macho::SourceVersionCommand<LE> =
                        cmd.data().map_err(|e| err!("{e}"))?;
                    img.source_version = Some(v.version.get(endian));
                }
                _ => {}
            }
        }
        for i in 0..indirect.1 as usize {
            let at = indirect.0 as usize + 4 * i;
            let b = data
                .get(at..at + 4)
                .ok_or_else(|| err!("indirect symbol table out of file bounds"))?;
            img.indirect_symbols
                .push(u32::from_le_bytes(b.try_into().unwrap()));
        }
        if let Some(blob) = img.linkedit_blob(img.chained_fixups_cmd) {
            let chains = crate::chains::parse(blob, |at| {
                img.read(at, 8)
                    .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
            })?;
            img.chains = Some(chains);
        }
        Ok(img)
    }

    /// The bytes a `linkedit_data_command` names.
    pub fn linkedit_blob(&self, cmd: Option<(u32, u32)>) -> Option<&[u8]> {
        let (off, size) = cmd?;
        self.data.get(off as usize..off as usize + size as usize)
    }

    /// 1-based section ordinal -> section.
    pub fn section(&self, ordinal: u32) -> Option<&Sect> {
        self.sections.get((ordinal as usize).checked_sub(1)?)
    }

    /// The section containing `addr`.
    pub fn section_at(&self, addr: u64) -> Option<(u32, &Sect)> {
        self.sections
            .iter()
            .enumerate()
            .find(|(_, s)| s.contains(addr))
            .map(|(i, s)| (i as u32 + 1, s))
    }

    pub fn symbol(&self, name: &str) -> Option<&InSymbol> {
        self.symbols
            .iter()
            .find(|s| s.name == name && s.is_defined())
    }

    /// Defined symbols at exactly `addr`.
    pub fn symbols_at(&self, addr: u64) -> Vec<&str> {
        self.symbols
            .iter()
            .filter(|s| s.is_defined() && s.n_value == addr)
            .map(|s| s.name.as_str())
            .collect()
    }

    /// The memory image as the loader maps it at vmaddr 0 (zerofill included).
    pub fn memory(&self) -> Vec<u8> {
        let end = self
            .segments
            .iter()
            .filter(|s| s.name != "__LINKEDIT")
            .map(|s| s.vmaddr + s.vmsize)
            .max()
            .unwrap_or(0);
        let mut mem = vec![0u8; end as usize];
        for s in self.segments.iter().filter(|s| s.name != "__LINKEDIT") {
            let n = s.filesize.min(s.vmsize) as usize;
            let src = self
                .data
                .get(s.fileoff as usize..s.fileoff as usize + n)
                .unwrap_or(&[]);
            mem[s.vmaddr as usize..s.vmaddr as usize + src.len()].copy_from_slice(src);
        }
        mem
    }

    /// Bytes at an unslid address, from the file.
    pub fn read(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let seg = self
            .segments
            .iter()
            .find(|s| addr >= s.vmaddr && addr + len as u64 <= s.vmaddr + s.filesize)?;
        let off = (seg.fileoff + addr - seg.vmaddr) as usize;
        self.data.get(off..off + len)
    }
}
