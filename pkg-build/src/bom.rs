//! The bill of materials (`Bom`) of a component package: every installed path with its type,
//! mode, owner, size and checksum. Installer keeps it as the receipt
//! (`/var/db/receipts/<id>.bom`), which `pkgutil --files`, `lsbom` and `pkgutil --forget` read.
//!
//! Written here because no maintained crate writes a correct one: apple-bom 0.3's `BomBuilder`
//! panics on every call (it builds a `CString` from bytes that already end in NUL) and records
//! IEEE CRC-32 where Apple records `cksum`. The layout follows the format as bomutils' `bom.h`
//! describes it (Joseph Coffland, Fabian Renn) and what its `mkbom` writes, which Installer has
//! accepted for a decade; checked by tests against apple-bom's reader and, in
//! `tests/suites/package.sh`, against an independent reader and coreutils' `cksum`.
//!
//! A Bom is a small block store, all integers big-endian:
//!
//! ```text
//! header (padded to 512)  "BOMStore", version 1, block count, index offset/length, vars offset/length
//! vars                    count, then (block index u32, name length u8, name) per variable
//! blocks                  the data of blocks 1..n, back to back
//! index                   block table: count (n + 1), then (offset, length) per block, block 0 null;
//!                         free list: count 0 and two null entries
//! ```
//!
//! The variable `Paths` is a B+ tree whose leaves list every path, keyed by (parent path id,
//! name): breadth first from the root `.` (id 1, parent 0), names in byte order within a
//! directory. Each key points to a `PathInfo1` (path id, record block) and a `File` block
//! (parent id, name); the record (`PathInfo2`) holds the metadata. `HLIndex`, `VIndex` and
//! `Size64` are empty trees, as pkgbuild and mkbom write them for a payload without hard links.

use crate::tree::{Kind, Tree};
use std::collections::VecDeque;

const MAGIC: &[u8; 8] = b"BOMStore";
const HEADER_SIZE: usize = 512;
/// Keys per leaf of the `Paths` tree (mkbom's choice; a leaf stays within 4 KiB).
const LEAF_CAPACITY: usize = 256;
/// `blockSize` of the `Paths`, `HLIndex` and `Size64` trees, and of the `VIndex` tree.
const TREE_BLOCK_SIZE: u32 = 4096;
const VINDEX_TREE_BLOCK_SIZE: u32 = 128;

/// `PathInfo2.type`.
const TYPE_FILE: u8 = 1;
const TYPE_DIR: u8 = 2;
/// `PathInfo2.architecture` as mkbom writes it (readers ignore it).
const ARCHITECTURE: u16 = 3;

/// The POSIX `cksum` of `data` (CRC-32/CKSUM over the data and then its length, least
/// significant byte first, in as few bytes as it needs), the checksum a Bom records and `lsbom`
/// prints.
pub fn cksum(data: &[u8]) -> u32 {
    const CKSUM: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_CKSUM);
    let mut digest = CKSUM.digest();
    digest.update(data);
    let mut len = data.len() as u64;
    while len != 0 {
        digest.update(&[len as u8]);
        len >>= 8;
    }
    digest.finalize()
}

/// The blocks and variables of a Bom under construction. Block indices start at 1 (0 is the
/// null block).
#[derive(Default)]
struct Store {
    blocks: Vec<Vec<u8>>,
    vars: Vec<(&'static str, u32)>,
}

impl Store {
    fn add(&mut self, data: Vec<u8>) -> u32 {
        self.blocks.push(data);
        self.blocks.len() as u32
    }

    fn var(&mut self, name: &'static str, block: u32) {
        self.vars.push((name, block));
    }

    fn bytes(self) -> Vec<u8> {
        let mut vars = be32(self.vars.len() as u32);
        for (name, block) in &self.vars {
            vars.extend(be32(*block));
            vars.push(name.len() as u8);
            vars.extend(name.as_bytes());
        }
        let blocks_at = HEADER_SIZE + vars.len();
        let mut table = be32(self.blocks.len() as u32 + 1);
        table.extend([0u8; 8]);
        let mut at = blocks_at;
        for b in &self.blocks {
            table.extend(be32(at as u32));
            table.extend(be32(b.len() as u32));
            at += b.len();
        }
        // The free list: empty, with room for two entries, as mkbom leaves it.
        table.extend(be32(0));
        table.extend([0u8; 16]);

        let mut out = Vec::with_capacity(at + table.len());
        out.extend(MAGIC);
        out.extend(be32(1));
        out.extend(be32(self.blocks.len() as u32));
        out.extend(be32(at as u32));
        out.extend(be32(table.len() as u32));
        out.extend(be32(HEADER_SIZE as u32));
        out.extend(be32(vars.len() as u32));
        out.resize(HEADER_SIZE, 0);
        out.extend(vars);
        for b in self.blocks {
            out.extend(b);
        }
        out.extend(table);
        out
    }
}

fn be32(v: u32) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

/// A `tree` block: the root of a B+ tree.
fn tree_block(child: u32, block_size: u32, path_count: u32) -> Vec<u8> {
    let mut b = b"tree".to_vec();
    b.extend(be32(1));
    b.extend(be32(child));
    b.extend(be32(block_size));
    b.extend(be32(path_count));
    b.push(0);
    b
}

/// A `Paths` node: a leaf (keys point to path records) or a branch (keys point to nodes).
fn paths_block(leaf: bool, forward: u32, backward: u32, keys: &[(u32, u32)]) -> Vec<u8> {
    let mut b = (leaf as u16).to_be_bytes().to_vec();
    b.extend((keys.len() as u16).to_be_bytes());
    b.extend(be32(forward));
    b.extend(be32(backward));
    for (index0, index1) in keys {
        b.extend(be32(*index0));
        b.extend(be32(*index1));
    }
    b
}

/// One path in key order: its id, its parent's id, its name and the tree path it stands for.
struct Keyed<'a> {
    id: u32,
    parent: u32,
    name: &'a str,
    path: &'a str,
}

/// The paths of `tree` breadth first, names in byte order within a directory: the `Paths`
/// key order (parent id, name), with ids given in that order.
fn key_order(tree: &Tree) -> Vec<Keyed<'_>> {
    let all: Vec<&str> = tree.entries().map(|(p, _)| p).collect();
    let mut out = vec![Keyed {
        id: 1,
        parent: 0,
        name: ".",
        path: "",
    }];
    let mut queue = VecDeque::from([(1u32, "")]);
    while let Some((parent_id, dir)) = queue.pop_front() {
        // Direct children of `dir`, already in byte order (the tree is sorted by path).
        for path in all.iter().copied().filter(|p| !p.is_empty()) {
            let (up, name) = path.rsplit_once('/').unwrap_or(("", path));
            if up != dir {
                continue;
            }
            let id = out.len() as u32 + 1;
            out.push(Keyed {
                id,
                parent: parent_id,
                name,
                path,
            });
            if tree.get(path).is_some_and(|e| e.kind == Kind::Dir) {
                queue.push_back((id, path));
            }
        }
    }
    out
}

/// The Bom of `tree`, every path's modification time `mtime`.
pub fn write(tree: &Tree, mtime: u32) -> Vec<u8> {
    let mut store = Store::default();
    let keyed = key_order(tree);
    let count = keyed.len() as u32;

    // BomInfo: version, number of paths + 1, one (unused) info entry.
    let mut info = be32(1);
    info.extend(be32(count + 1));
    info.extend(be32(1));
    info.extend([0u8; 16]);
    let info_block = store.add(info);
    store.var("BomInfo", info_block);

    let mut keys = Vec::with_capacity(keyed.len());
    for k in &keyed {
        let entry = tree.get(k.path).expect("key_order lists paths of the tree");
        let (kind, checksum) = match &entry.kind {
            Kind::Dir => (TYPE_DIR, 0),
            Kind::File(data) => (TYPE_FILE, cksum(data)),
        };
        let mut record = vec![kind, 1];
        record.extend(ARCHITECTURE.to_be_bytes());
        record.extend((entry.mode() as u16).to_be_bytes());
        record.extend(be32(entry.uid));
        record.extend(be32(entry.gid));
        record.extend(be32(mtime));
        record.extend(be32(entry.size() as u32));
        record.push(1);
        record.extend(be32(checksum));
        record.extend(be32(0)); // no link name
        if kind == TYPE_FILE {
            // pkgbuild's file records carry four more (zero) bytes, which lsbom reads.
            record.extend([0u8; 4]);
        }
        let record_block = store.add(record);
        let mut info1 = be32(k.id);
        info1.extend(be32(record_block));
        let info1_block = store.add(info1);
        let mut file = be32(k.parent);
        file.extend(k.name.as_bytes());
        file.push(0);
        let file_block = store.add(file);
        keys.push((info1_block, file_block));
    }

    // The leaves, linked both ways; more than one gets a branch above them whose keys are each
    // leaf's last key.
    let leaves: Vec<&[(u32, u32)]> = keys.chunks(LEAF_CAPACITY).collect();
    let first_leaf = store.blocks.len() as u32 + 1;
    let last_leaf = first_leaf + leaves.len() as u32 - 1;
    let mut branch_keys = Vec::new();
    for (i, leaf) in leaves.iter().enumerate() {
        let index = first_leaf + i as u32;
        let forward = if index < last_leaf { index + 1 } else { 0 };
        let backward = if index > first_leaf { index - 1 } else { 0 };
        store.add(paths_block(true, forward, backward, leaf));
        branch_keys.push((index, leaf.last().map_or(0, |k| k.1)));
    }
    let root = if leaves.len() > 1 {
        store.add(paths_block(false, 0, 0, &branch_keys))
    } else {
        first_leaf
    };
    let paths_tree = store.add(tree_block(root, TREE_BLOCK_SIZE, count));
    store.var("Paths", paths_tree);

    let empty = store.add(paths_block(true, 0, 0, &[]));
    let hl_index = store.add(tree_block(empty, TREE_BLOCK_SIZE, 0));
    store.var("HLIndex", hl_index);

    let empty = store.add(paths_block(true, 0, 0, &[]));
    let v_tree = store.add(tree_block(empty, VINDEX_TREE_BLOCK_SIZE, 0));
    let mut v_index = be32(1);
    v_index.extend(be32(v_tree));
    v_index.extend(be32(0));
    v_index.push(0);
    let v_index = store.add(v_index);
    store.var("VIndex", v_index);

    let empty = store.add(paths_block(true, 0, 0, &[]));
    let size64 = store.add(tree_block(empty, TREE_BLOCK_SIZE, 0));
    store.var("Size64", size64);

    store.bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{dir, file, Tree, ADMIN, ROOT, WHEEL};

    #[test]
    fn cksum_is_posix_cksum() {
        // `printf 123456789 | cksum` and `printf '' | cksum`
        assert_eq!(cksum(b"123456789"), 930_766_865);
        assert_eq!(cksum(b""), 4_294_967_295);
        // A length that needs two bytes.
        let data = vec![0xa5u8; 300];
        assert_ne!(cksum(&data), cksum(&data[..299]));
    }

    #[test]
    fn keys_are_breadth_first_by_parent_then_name() {
        let mut t = Tree::new(0o755, ROOT, WHEEL);
        t.add("b", dir(0o755, ROOT, WHEEL)).unwrap();
        t.add("a", dir(0o755, ROOT, ADMIN)).unwrap();
        t.add("a/z", file(vec![1], 0o644, ROOT, WHEEL)).unwrap();
        t.add("b/c", file(vec![2], 0o644, ROOT, WHEEL)).unwrap();
        t.add("a-b", file(vec![3], 0o644, ROOT, WHEEL)).unwrap();
        let keyed: Vec<_> = key_order(&t)
            .iter()
            .map(|k| (k.id, k.parent, k.name.to_string()))
            .collect();
        let want = [
            (1, 0, "."),
            (2, 1, "a"),
            (3, 1, "a-b"),
            (4, 1, "b"),
            (5, 2, "z"),
            (6, 4, "c"),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(i, p, n)| (*i, *p, n.to_string()))
            .collect();
        assert_eq!(keyed, want);
    }

    #[test]
    fn header_index_and_vars_are_where_the_header_says() {
        let t = Tree::new(0o755, ROOT, WHEEL);
        let b = write(&t, 0);
        let word = |o: usize| u32::from_be_bytes(b[o..o + 4].try_into().unwrap());
        assert_eq!(&b[..8], MAGIC);
        let (blocks, index_at, index_len) = (word(12), word(16) as usize, word(20) as usize);
        assert_eq!(index_at + index_len, b.len(), "the index ends the file");
        assert_eq!(word(index_at), blocks + 1, "table counts the null block");
        assert_eq!(
            (word(24), word(28) as usize),
            (512, 4 + 5 * 5 + "BomInfoPathsHLIndexVIndexSize64".len())
        );
    }
}
