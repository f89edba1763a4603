//! tunnel.kext's own kext linker and bundler.
//!
//! `ld64.lld` cannot write a kext (no `-kext`, no `-r`), so this crate links the shim object(s)
//! and the Rust static library into an x86_64 `MH_KEXT_BUNDLE` the way `ld64 -kext` does:
//! base address 0, classic relocations reached through `LC_DYSYMTAB`, a synthesized GOT,
//! only `_kmod_info` exported. See `docs/kext-build.md` (sections 3, 4, 6, 10).
//!
//! * [`input`]: reading objects and archives (`object::read::macho`);
//! * [`kpi`]: the project's KPI table, Apple's export lists, Info.plist;
//! * [`link`]: resolution and the checks of section 4, layout, per-architecture relocation
//!   lowering, fixup emitters, symbol table and Mach-O writing (one module each);
//! * [`image`]: reading a linked kext back (used by `verify` and by the linker's own kmod_info check);
//! * [`verify`]: structural checks, the relocation simulator, kmod_info and plist checks;
//! * [`bundle`]: writes `tunnel.kext/Contents/Info.plist` and `Contents/MacOS/<exe>`.

pub mod bundle;
pub mod chains;
pub mod fat;
pub mod image;
pub mod input;
pub mod kpi;
pub mod link;
pub mod verify;

use std::fmt;

/// Every failure is a message meant for a person: it names the symbol and the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

#[macro_export]
#[doc(hidden)]
macro_rules! err {
    ($($arg:tt)*) => { $crate::Error(format!($($arg)*)) };
}

/// Combines collected messages into one error (one message per line), or `Ok`.
pub fn check_all(errors: Vec<String>) -> Result<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error(errors.join("\n")))
    }
}

pub(crate) fn align_up(v: u64, align: u64) -> u64 {
    if align <= 1 {
        v
    } else {
        v.div_ceil(align) * align
    }
}

/// Mach-O / kext constants the crate uses beyond `object::macho`.
pub mod consts {
    /// `mach_header_64.flags` as `ld64 -kext` writes: NOUNDEFS | DYLDLINK | TWOLEVEL.
    pub const KEXT_HEADER_FLAGS: u32 = 0x85;
    /// `sizeof(kmod_info_t)` on LP64 (pack(4)).
    pub const KMOD_INFO_SIZE: u64 = 196;
    pub const KMOD_START_OFFSET: usize = 180;
    pub const KMOD_STOP_OFFSET: usize = 188;
    /// `n_desc` of an undefined symbol as `ld64 -kext` writes it: library ordinal 0xFE
    /// (`DYNAMIC_LOOKUP_ORDINAL`) in the high byte, no weak-reference bit. Both loaders also
    /// accept 0; the linker matches ld64.
    pub const DYNAMIC_LOOKUP_DESC: u16 = 0xFE00;
    /// Minimum macOS the kext supports: 10.13.
    pub const MIN_MACOS: u32 = 0x000A_0D00;
    pub const PAGE: u64 = 4096;
    /// arm64 kexts: 16 KiB segments (docs/kext-build.md 9.1).
    pub const PAGE_ARM64: u64 = 0x4000;
    /// arm64e chained fixups use 4 KiB chain pages even in 16 KiB segments.
    pub const CHAIN_PAGE: u64 = 0x1000;
    /// `CPU_SUBTYPE_ARM64E` | versioned-ABI bit | kernel bit, ABI version 0: the only subtype
    /// the kernel-collection builder takes for an arm64e kext.
    pub const ARM64E_KERNEL_SUBTYPE: u32 = 0xC000_0002;
    /// `DYLD_CHAINED_PTR_ARM64E_KERNEL`: stride 4, targets are offsets from the image start.
    pub const CHAINED_PTR_ARM64E_KERNEL: u16 = 7;
    /// Zero bytes kept after the load commands for a signer's `LC_CODE_SIGNATURE`.
    pub const HEADER_PAD: u64 = 512;
    /// Kernel exports a kext must never define itself: defining them means
    /// `compiler-builtins-mem` was switched on.
    pub const MEM_FAMILY: [&str; 6] = [
        "_memcpy", "_memmove", "_memset", "_memcmp", "_bcmp", "_bzero",
    ];
}
