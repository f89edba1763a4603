//! What relocation lowering produces, independently of how an architecture's loader is told:
//! bytes to write, fixups the loader applies (classic relocations on x86_64, chained fixups
//! on arm64e), and the references the kernel-collection builder must adjust when it moves
//! segments apart (split-seg info, arm64e).

/// Pointer authentication of a pointer the loader signs (arm64e): key (0 = IA, 1 = IB,
/// 2 = DA, 3 = DB), address diversity, 16-bit discriminator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Auth {
    pub key: u8,
    pub addr_div: bool,
    pub diversity: u16,
}

impl Auth {
    /// How the kernel calls a plain C function pointer: IA key, no address diversity,
    /// discriminator 0 (docs/kext-build.md 9.2).
    pub const IA0: Auth = Auth {
        key: 0,
        addr_div: false,
        diversity: 0,
    };
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fixup {
    /// A 64-bit pointer to `target` in the kext: the loader adds the slide (and signs it).
    Rebase {
        site: u64,
        target: u64,
        /// 1-based output section of the target (x86_64 local relocations name it).
        section: u32,
        auth: Option<Auth>,
    },
    /// A pointer to a kernel symbol, or (`call`, x86_64 only) a call's rel32.
    Bind {
        site: u64,
        name: String,
        call: bool,
        auth: Option<Auth>,
    },
}

impl Fixup {
    pub fn rebase(site: u64, target: u64, section: u32) -> Fixup {
        Fixup::Rebase {
            site,
            target,
            section,
            auth: None,
        }
    }

    pub fn site(&self) -> u64 {
        match self {
            Fixup::Rebase { site, .. } | Fixup::Bind { site, .. } => *site,
        }
    }
}

/// Split-seg v2 reference kinds (dyld `DYLD_CACHE_ADJ_V2_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefKind {
    /// A 64-bit (chained) pointer.
    Pointer64 = 2,
    /// The page of an ADRP.
    Adrp = 5,
    /// The low 12 bits of an ADD/LDR/STR paired with an ADRP.
    Off12 = 6,
    /// A B/BL imm26.
    Br26 = 7,
}

impl RefKind {
    pub fn from_code(c: u64) -> Option<RefKind> {
        Some(match c {
            2 => RefKind::Pointer64,
            5 => RefKind::Adrp,
            6 => RefKind::Off12,
            7 => RefKind::Br26,
            _ => return None,
        })
    }
}

/// One reference from `from` (an address in the image) to `to` (the address it designates,
/// addend included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ref {
    pub kind: RefKind,
    pub from: u64,
    pub to: u64,
}

#[derive(Default)]
pub struct Lowered {
    /// (output section, offset in it, bytes)
    pub writes: Vec<(usize, usize, Vec<u8>)>,
    pub fixups: Vec<Fixup>,
    pub refs: Vec<Ref>,
}
