//! The Bom writer checked against an independent reader: apple-bom's `ParsedBom` (written
//! against Boms from Apple's tools; its writer is not used). Every path of the tree must come
//! back with its type, mode, owner, size, checksum and time, in key order.

use apple_bom::{BomPathType, ParsedBom};
use pkg_build::bom::{self, cksum};
use pkg_build::tree::{dir, file, Kind, Tree, ADMIN, ROOT, WHEEL};

const MTIME: u32 = 1_700_000_000;

/// The tree's paths as apple-bom names them: ".", "./a", "./a/b", ...
fn bom_name(path: &str) -> String {
    if path.is_empty() {
        ".".to_string()
    } else {
        format!("./{path}")
    }
}

fn check_round_trip(tree: &Tree) {
    let bytes = bom::write(tree, MTIME);
    let parsed = ParsedBom::parse(&bytes).expect("apple-bom parses the Bom");
    let paths = parsed.paths().expect("apple-bom lists the paths");
    assert_eq!(paths.len(), tree.len(), "one Bom path per tree entry");
    let mut names_seen = Vec::new();
    for p in &paths {
        names_seen.push(p.path().to_string());
        let rel = p.path().strip_prefix("./").unwrap_or("");
        let rel = if p.path() == "." { "" } else { rel };
        let e = tree
            .get(rel)
            .unwrap_or_else(|| panic!("{} is not in the tree", p.path()));
        assert_eq!(u32::from(p.file_mode()), e.mode(), "{} mode", p.path());
        assert_eq!(
            (p.user_id(), p.group_id()),
            (e.uid, e.gid),
            "{} owner",
            p.path()
        );
        assert_eq!(
            p.modified_time().timestamp(),
            i64::from(MTIME),
            "{} mtime",
            p.path()
        );
        match &e.kind {
            Kind::Dir => assert!(
                matches!(p.path_type(), BomPathType::Directory),
                "{}",
                p.path()
            ),
            Kind::File(data) => {
                assert!(matches!(p.path_type(), BomPathType::File), "{}", p.path());
                assert_eq!(p.size(), data.len(), "{} size", p.path());
                assert_eq!(p.crc32(), Some(cksum(data)), "{} cksum", p.path());
            }
        }
    }
    let mut want: Vec<String> = tree.entries().map(|(p, _)| bom_name(p)).collect();
    want.sort();
    names_seen.sort();
    assert_eq!(names_seen, want);
}

#[test]
fn the_package_payload_layout_reads_back_path_by_path() {
    let mut t = Tree::new(0o755, ROOT, WHEEL);
    t.add("Library", dir(0o755, ROOT, WHEEL)).unwrap();
    t.add("Library/Application Support", dir(0o755, ROOT, ADMIN))
        .unwrap();
    t.add(
        "Library/Application Support/tunnel.kext",
        dir(0o755, ROOT, WHEEL),
    )
    .unwrap();
    t.add(
        "Library/Application Support/tunnel.kext/uninstall.sh",
        file(b"#!/bin/bash\necho bye\n".to_vec(), 0o755, ROOT, WHEEL),
    )
    .unwrap();
    t.add("Library/Extensions", dir(0o755, ROOT, WHEEL))
        .unwrap();
    t.add("Library/Extensions/tunnel.kext", dir(0o755, ROOT, WHEEL))
        .unwrap();
    t.add(
        "Library/Extensions/tunnel.kext/Contents",
        dir(0o755, ROOT, WHEEL),
    )
    .unwrap();
    t.add(
        "Library/Extensions/tunnel.kext/Contents/Info.plist",
        file(b"<plist/>".to_vec(), 0o644, ROOT, WHEEL),
    )
    .unwrap();
    t.add(
        "Library/Extensions/tunnel.kext/Contents/Empty",
        file(Vec::new(), 0o644, ROOT, WHEEL),
    )
    .unwrap();
    check_round_trip(&t);
}

#[test]
fn a_tree_of_more_than_one_leaf_reads_back_through_the_branch_and_leaf_links() {
    // 3 directories of 300 files: 904 paths, four leaves of at most 256 keys.
    let mut t = Tree::new(0o755, ROOT, WHEEL);
    for d in ["a", "b", "c"] {
        t.add(d, dir(0o755, ROOT, WHEEL)).unwrap();
        for i in 0..300 {
            let data = format!("{d}{i}").repeat(i % 7).into_bytes();
            t.add(&format!("{d}/f{i:03}"), file(data, 0o644, 501, 20))
                .unwrap();
        }
    }
    check_round_trip(&t);
}

#[test]
fn the_root_alone_is_a_valid_bom() {
    check_round_trip(&Tree::new(0o755, ROOT, WHEEL));
}
