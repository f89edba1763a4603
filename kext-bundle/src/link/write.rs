//! Writing the Mach-O image: header, load commands, section contents, `__LINKEDIT`, and the
//! deterministic `LC_UUID` (a hash of the image with the UUID field zeroed).

use super::layout::{segment_command_size, Layout, OutSection};
use crate::align_up;
use crate::consts::KEXT_HEADER_FLAGS;
use object::macho;
use object::pod::{bytes_of, Pod};
use object::{LittleEndian as LE, U32, U64};

/// `__LINKEDIT` being assembled: blobs appended in file order.
pub struct Linkedit {
    pub fileoff: u64,
    pub bytes: Vec<u8>,
}

impl Linkedit {
    pub fn new(fileoff: u64) -> Self {
        Linkedit {
            fileoff,
            bytes: Vec::new(),
        }
    }

    /// Appends `blob`; returns its file offset.
    pub fn add(&mut self, blob: &[u8]) -> u64 {
        let off = self.fileoff + self.bytes.len() as u64;
        self.bytes.extend_from_slice(blob);
        off
    }
}

/// The `LC_DYSYMTAB` fields a kext uses (symbol ranges: locals, extdefs, undefs).
#[derive(Default)]
pub struct Dysymtab {
    pub nlocal: usize,
    pub nextdef: usize,
    pub nundef: usize,
    pub indirectsymoff: u64,
    pub nindirect: usize,
    pub extreloff: u64,
    pub nextrel: usize,
    pub locreloff: u64,
    pub nlocrel: usize,
}

/// The image under construction: header and load commands first.
pub struct Writer {
    image: Vec<u8>,
    uuid_off: Option<usize>,
}

fn name16(s: &str) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..s.len()].copy_from_slice(s.as_bytes());
    b
}

impl Writer {
    pub fn new(cputype: u32, cpusubtype: u32, ncmds: u32, sizeofcmds: u64) -> Self {
        let header = macho::MachHeader64::<LE> {
            magic: U32::new(object::BigEndian, macho::MH_CIGAM_64), // MH_MAGIC_64, little-endian
            cputype: U32::new(LE, cputype),
            cpusubtype: U32::new(LE, cpusubtype),
            filetype: U32::new(LE, macho::MH_KEXT_BUNDLE),
            ncmds: U32::new(LE, ncmds),
            sizeofcmds: U32::new(LE, sizeofcmds as u32),
            flags: U32::new(LE, KEXT_HEADER_FLAGS),
            reserved: U32::new(LE, 0),
        };
        Writer {
            image: bytes_of(&header).to_vec(),
            uuid_off: None,
        }
    }

    pub fn command<T: Pod>(&mut self, cmd: &T) {
        self.image.extend_from_slice(bytes_of(cmd));
    }

    /// `LC_SEGMENT_64` for every segment of the layout, then `__LINKEDIT`, with sections.
    pub fn segments(&mut self, layout: &Layout, linkedit: &Linkedit, page: u64) {
        let mut segs: Vec<(&str, u64, u64, u64, u64, u32)> = layout
            .segments
            .iter()
            .map(|s| (s.name, s.vmaddr, s.vmsize, s.fileoff, s.filesize, s.prot))
            .collect();
        segs.push((
            "__LINKEDIT",
            layout.linkedit_vmaddr,
            align_up(linkedit.bytes.len() as u64, page),
            linkedit.fileoff,
            linkedit.bytes.len() as u64,
            1,
        ));
        for (segname, vmaddr, vmsize, fileoff, filesize, prot) in segs {
            let secs: Vec<&OutSection> = layout
                .outs
                .iter()
                .filter(|o| o.segname == segname)
                .collect();
            self.command(&macho::SegmentCommand64::<LE> {
                cmd: U32::new(LE, macho::LC_SEGMENT_64),
                cmdsize: U32::new(LE, segment_command_size(secs.len() as u64) as u32),
                segname: name16(segname),
                vmaddr: U64::new(LE, vmaddr),
                vmsize: U64::new(LE, vmsize),
                fileoff: U64::new(LE, fileoff),
                filesize: U64::new(LE, filesize),
                maxprot: U32::new(LE, prot),
                initprot: U32::new(LE, prot),
                nsects: U32::new(LE, secs.len() as u32),
                flags: U32::new(LE, 0),
            });
            for s in secs {
                let offset = if s.zerofill() {
                    0
                } else {
                    fileoff + (s.addr - vmaddr)
                };
                self.command(&macho::Section64::<LE> {
                    sectname: name16(&s.sectname),
                    segname: name16(segname),
                    addr: U64::new(LE, s.addr),
                    size: U64::new(LE, s.size),
                    offset: U32::new(LE, offset as u32),
                    align: U32::new(LE, s.align),
                    reloff: U32::new(LE, 0),
                    nreloc: U32::new(LE, 0),
                    flags: U32::new(LE, s.flags),
                    reserved1: U32::new(LE, s.reserved1),
                    reserved2: U32::new(LE, s.reserved2),
                    reserved3: U32::new(LE, 0),
                });
            }
        }
    }

    pub fn symtab(&mut self, symoff: u64, nsyms: usize, stroff: u64, strsize: usize) {
        self.command(&macho::SymtabCommand::<LE> {
            cmd: U32::new(LE, macho::LC_SYMTAB),
            cmdsize: U32::new(LE, 24),
            symoff: U32::new(LE, symoff as u32),
            nsyms: U32::new(LE, nsyms as u32),
            stroff: U32::new(LE, stroff as u32),
            strsize: U32::new(LE, strsize as u32),
        });
    }

    pub fn dysymtab(&mut self, d: &Dysymtab) {
        let z = || U32::new(LE, 0);
        let u = |v: u64| U32::new(LE, v as u32);
        // An empty table's offset is 0.
        let off = |off: u64, n: usize| U32::new(LE, if n == 0 { 0 } else { off as u32 });
        self.command(&macho::DysymtabCommand::<LE> {
            cmd: U32::new(LE, macho::LC_DYSYMTAB),
            cmdsize: U32::new(LE, 80),
            ilocalsym: z(),
            nlocalsym: u(d.nlocal as u64),
            iextdefsym: u(d.nlocal as u64),
            nextdefsym: u(d.nextdef as u64),
            iundefsym: u((d.nlocal + d.nextdef) as u64),
            nundefsym: u(d.nundef as u64),
            tocoff: z(),
            ntoc: z(),
            modtaboff: z(),
            nmodtab: z(),
            extrefsymoff: z(),
            nextrefsyms: z(),
            indirectsymoff: off(d.indirectsymoff, d.nindirect),
            nindirectsyms: u(d.nindirect as u64),
            extreloff: off(d.extreloff, d.nextrel),
            nextrel: u(d.nextrel as u64),
            locreloff: off(d.locreloff, d.nlocrel),
            nlocrel: u(d.nlocrel as u64),
        });
    }

    /// An `LC_UUID` whose value [`Writer::finish`] fills in.
    pub fn uuid(&mut self) {
        self.uuid_off = Some(self.image.len() + 8);
        self.command(&macho::UuidCommand::<LE> {
            cmd: U32::new(LE, macho::LC_UUID),
            cmdsize: U32::new(LE, 24),
            uuid: [0; 16],
        });
    }

    /// A `linkedit_data_command` (`LC_DYLD_CHAINED_FIXUPS`, `LC_SEGMENT_SPLIT_INFO`).
    pub fn linkedit_data(&mut self, cmd: u32, dataoff: u64, datasize: usize) {
        self.command(&macho::LinkeditDataCommand::<LE> {
            cmd: U32::new(LE, cmd),
            cmdsize: U32::new(LE, 16),
            dataoff: U32::new(LE, dataoff as u32),
            datasize: U32::new(LE, datasize as u32),
        });
    }

    /// Section contents and `__LINKEDIT` after the load commands; then the UUID.
    pub fn finish(mut self, layout: &Layout, linkedit: &Linkedit) -> Vec<u8> {
        assert_eq!(
            self.image.len() as u64,
            layout.header_end,
            "load command sizes"
        );
        for seg in &layout.segments {
            for s in layout
                .outs
                .iter()
                .filter(|s| s.segname == seg.name && !s.zerofill())
            {
                self.image
                    .resize((seg.fileoff + s.addr - seg.vmaddr) as usize, 0);
                self.image.extend_from_slice(&s.data);
            }
        }
        self.image.resize(linkedit.fileoff as usize, 0);
        self.image.extend_from_slice(&linkedit.bytes);
        if let Some(at) = self.uuid_off {
            let digest = fnv1a_128(&self.image).to_be_bytes();
            let mut u = [0u8; 16];
            u.copy_from_slice(&digest);
            u[6] = (u[6] & 0x0f) | 0x30; // name-based UUID layout, as ld64's
            u[8] = (u[8] & 0x3f) | 0x80;
            self.image[at..at + 16].copy_from_slice(&u);
        }
        self.image
    }
}

/// FNV-1a, 128-bit: the deterministic content hash behind `LC_UUID`.
pub fn fnv1a_128(data: &[u8]) -> u128 {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    let prime: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013B;
    for &b in data {
        h ^= b as u128;
        h = h.wrapping_mul(prime);
    }
    h
}
