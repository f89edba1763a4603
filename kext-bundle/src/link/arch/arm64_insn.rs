//! The arm64 instruction fields the linker patches and the verifier reads back: ADRP's
//! 21-bit page delta, the 12-bit low offset of ADD (immediate) and of LDR/STR (unsigned
//! immediate, scaled by the access size), and B/BL's 26-bit word offset (Arm ARM C6.2).

/// `adrp Xd, label`
pub fn is_adrp(insn: u32) -> bool {
    insn & 0x9F00_0000 == 0x9000_0000
}

/// `add Xd, Xn, #imm12` (64-bit, no shift).
pub fn is_add_imm(insn: u32) -> bool {
    insn & 0xFFC0_0000 == 0x9100_0000
}

/// LDR/STR (unsigned immediate), integer or SIMD&FP.
pub fn is_ldst_uimm(insn: u32) -> bool {
    insn & 0x3B00_0000 == 0x3900_0000
}

/// `b label` or `bl label`.
pub fn is_branch26(insn: u32) -> bool {
    insn & 0x7C00_0000 == 0x1400_0000
}

pub fn rd(insn: u32) -> u32 {
    insn & 0x1F
}

pub fn rn(insn: u32) -> u32 {
    (insn >> 5) & 0x1F
}

/// log2 of the access size of a LDR/STR (unsigned immediate): its imm12 counts in these.
pub fn ldst_scale(insn: u32) -> u32 {
    let size = insn >> 30;
    // SIMD&FP (V = 1) with opc<1> = 1 and size = 0: a 128-bit Q register
    if insn & 0x0480_0000 == 0x0480_0000 && size == 0 {
        4
    } else {
        size
    }
}

/// The page delta (in 4 KiB pages) an ADRP adds to its own page.
pub fn adrp_pages(insn: u32) -> i64 {
    let immlo = ((insn >> 29) & 3) as i64;
    let immhi = ((insn >> 5) & 0x7FFFF) as i64;
    let v = (immhi << 2) | immlo;
    (v << 43) >> 43 // sign-extend 21 bits
}

/// ADRP at `pc` loading the page of `target`; `None` beyond ±4 GiB.
pub fn encode_adrp(insn: u32, pc: u64, target: u64) -> Option<u32> {
    let pages = ((target & !0xFFF) as i64).wrapping_sub((pc & !0xFFF) as i64) >> 12;
    if !(-(1 << 20)..(1 << 20)).contains(&pages) {
        return None;
    }
    let v = pages as u32;
    Some((insn & 0x9F00_001F) | ((v & 3) << 29) | (((v >> 2) & 0x7FFFF) << 5))
}

/// The byte offset an ADD/LDR/STR imm12 adds (scaled for loads and stores).
pub fn low12(insn: u32) -> u64 {
    let imm = ((insn >> 10) & 0xFFF) as u64;
    if is_ldst_uimm(insn) {
        imm << ldst_scale(insn)
    } else {
        imm
    }
}

/// ADD/LDR/STR with the low 12 bits of `target`; an error says why it cannot be encoded.
pub fn encode_low12(insn: u32, target: u64) -> Result<u32, String> {
    let lo = (target & 0xFFF) as u32;
    let imm = if is_add_imm(insn) {
        lo
    } else if is_ldst_uimm(insn) {
        let scale = ldst_scale(insn);
        if lo & ((1 << scale) - 1) != 0 {
            return Err(format!(
                "page offset {lo:#x} is not a multiple of the {}-byte access",
                1 << scale
            ));
        }
        lo >> scale
    } else {
        return Err(format!(
            "instruction {insn:#010x} is neither ADD (immediate) nor LDR/STR (unsigned immediate)"
        ));
    };
    Ok((insn & 0xFFC0_03FF) | (imm << 10))
}

/// The byte offset of a B/BL from its own address.
pub fn branch26_offset(insn: u32) -> i64 {
    (((insn & 0x03FF_FFFF) as i64) << 38) >> 36
}

/// B/BL at `pc` to `target`; `None` beyond ±128 MiB or when misaligned.
pub fn encode_branch26(insn: u32, pc: u64, target: u64) -> Option<u32> {
    let delta = (target as i64).wrapping_sub(pc as i64);
    if delta % 4 != 0 || !(-(1 << 27)..(1 << 27)).contains(&delta) {
        return None;
    }
    Some((insn & 0xFC00_0000) | ((delta >> 2) as u32 & 0x03FF_FFFF))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Words from clang-22's output for arm64e (llvm-objdump -d).
    #[test]
    fn encodings_match_the_assembler() {
        // adrp x8, 0x0 at 0xf0 (page delta 0)
        assert!(is_adrp(0x9000_0008));
        assert_eq!(rd(0x9000_0008), 8);
        assert_eq!(encode_adrp(0x9000_0008, 0xf0, 0x2000), Some(0xd000_0008)); // +2 pages (immlo = 2)
        assert_eq!(adrp_pages(0xd000_0008), 2);
        assert_eq!(adrp_pages(0xd000_00f0), 30); // a stub: adrp x16, +0x1e000 (llvm-objdump)
        assert_eq!(
            adrp_pages(encode_adrp(0x9000_0008, 0x5000, 0x1000).unwrap()),
            -4
        );
        // add x8, x8, #0x0
        assert!(is_add_imm(0x9100_0108));
        assert_eq!(
            encode_low12(0x9100_0108, 0x1234).unwrap(),
            0x9100_0108 | (0x234 << 10)
        );
        // ldr x16, [x16] scales by 8
        assert!(is_ldst_uimm(0xf940_0210));
        assert_eq!(ldst_scale(0xf940_0210), 3);
        let l = encode_low12(0xf940_0210, 0x1238).unwrap();
        assert_eq!(low12(l), 0x238);
        assert!(encode_low12(0xf940_0210, 0x1234).is_err());
        // ldr d1, [x8] scales by 8; ldr q0, [x8] by 16; strb by 1
        assert_eq!(ldst_scale(0xfd40_0101), 3);
        assert_eq!(ldst_scale(0x3dc0_0100), 4);
        assert_eq!(ldst_scale(0x3900_0109), 0);
        // bl: 0x94000000 at 0x100 to 0x80 and back
        let bl = encode_branch26(0x9400_0000, 0x100, 0x80).unwrap();
        assert_eq!(branch26_offset(bl), -0x80);
        assert!(is_branch26(bl) && is_branch26(0x1400_0000));
        assert_eq!(encode_branch26(0x9400_0000, 0, 1 << 27), None);
    }
}
