//! The files an archive holds, as Installer will create them: paths relative to the install
//! location, with their type, permission bits and numeric owner decided here, never taken from
//! the build machine (whose owners and umask differ from one build to the next). The same tree
//! is written as an odc cpio archive (`Payload`, `Scripts`) and as a Bom ([`crate::bom`]).

use crate::{err, Result};
use cpio_archive::odc::{OdcBuilder, OdcHeader};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// `S_IFDIR` and `S_IFREG`: the type bits of a mode (sys/stat.h).
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;

/// uid and gid of root:wheel and of the admin group, as macOS numbers them.
pub const ROOT: u32 = 0;
pub const WHEEL: u32 = 0;
pub const ADMIN: u32 = 80;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Vec<u8>),
}

/// One path of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits only (at most 0o777); [`Entry::mode`] adds the type bits.
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Entry {
    /// The full `st_mode`: type bits and permission bits.
    pub fn mode(&self) -> u32 {
        match self.kind {
            Kind::Dir => S_IFDIR | self.perm,
            Kind::File(_) => S_IFREG | self.perm,
        }
    }

    pub fn size(&self) -> usize {
        match &self.kind {
            Kind::Dir => 0,
            Kind::File(data) => data.len(),
        }
    }
}

/// Which permission bits a file copied from disk gets.
#[derive(Clone, Copy, Debug)]
pub enum FileModes {
    /// Every file 0644, whatever its bits on disk (a kext: nothing in it is executed by exec).
    Fixed0644,
    /// 0755 if its owner may execute it on disk, else 0644 (scripts).
    ExecBit,
}

/// Paths relative to the root (`""` is the root itself, `"a/b"` is `./a/b`), sorted, so that a
/// directory always comes before what it holds.
#[derive(Clone, Debug)]
pub struct Tree {
    entries: BTreeMap<String, Entry>,
}

impl Tree {
    /// A tree holding only its root directory.
    pub fn new(perm: u32, uid: u32, gid: u32) -> Tree {
        let mut entries = BTreeMap::new();
        let root = Entry {
            kind: Kind::Dir,
            perm,
            uid,
            gid,
        };
        entries.insert(String::new(), root);
        Tree { entries }
    }

    /// Adds a directory or a file; its parent must be in the tree already.
    pub fn add(&mut self, path: &str, entry: Entry) -> Result<()> {
        let valid = !path.is_empty()
            && path
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0'));
        if !valid {
            return Err(err!("'{path}' is not a relative path of plain components"));
        }
        if entry.perm > 0o777 {
            return Err(err!(
                "{path}: mode {:o} has more than permission bits",
                entry.perm
            ));
        }
        let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
        match self.entries.get(parent) {
            Some(Entry {
                kind: Kind::Dir, ..
            }) => {}
            _ => return Err(err!("{path}: its directory '{parent}' is not in the tree")),
        }
        if self.entries.contains_key(path) {
            return Err(err!("{path} is in the tree twice"));
        }
        self.entries.insert(path.to_string(), entry);
        Ok(())
    }

    /// Adds `dest` (a directory) and, below it, every directory and regular file under `src`
    /// in name order: directories 0755, files per `modes`, all owned root:wheel. A symbolic
    /// link or a special file is an error (nothing we install has one).
    pub fn add_from_disk(&mut self, dest: &str, src: &Path, modes: FileModes) -> Result<()> {
        self.add(dest, dir(0o755, ROOT, WHEEL))?;
        self.add_contents(dest, src, modes)
    }

    /// Like [`Tree::add_from_disk`] for what is inside `src` only, below `dest` (which is in
    /// the tree already; `""` is the root).
    pub fn add_contents(&mut self, dest: &str, src: &Path, modes: FileModes) -> Result<()> {
        let mut names = Vec::new();
        let listing = std::fs::read_dir(src).map_err(|e| err!("{}: {e}", src.display()))?;
        for item in listing {
            let item = item.map_err(|e| err!("{}: {e}", src.display()))?;
            let name = item
                .file_name()
                .into_string()
                .map_err(|n| err!("{}: the name {n:?} is not UTF-8", src.display()))?;
            names.push(name);
        }
        names.sort();
        for name in names {
            let path = src.join(&name);
            let to = if dest.is_empty() {
                name.clone()
            } else {
                format!("{dest}/{name}")
            };
            let meta =
                std::fs::symlink_metadata(&path).map_err(|e| err!("{}: {e}", path.display()))?;
            if meta.is_dir() {
                self.add_from_disk(&to, &path, modes)?;
            } else if meta.is_file() {
                let data = std::fs::read(&path).map_err(|e| err!("{}: {e}", path.display()))?;
                let perm = match modes {
                    FileModes::Fixed0644 => 0o644,
                    FileModes::ExecBit if owner_may_execute(&meta) => 0o755,
                    FileModes::ExecBit => 0o644,
                };
                self.add(&to, file(data, perm, ROOT, WHEEL))?;
            } else {
                return Err(err!(
                    "{}: not a directory or a regular file (links and devices are not packaged)",
                    path.display()
                ));
            }
        }
        Ok(())
    }

    /// Every entry, root first, then by path.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(p, e)| (p.as_str(), e))
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        false // the root is always there
    }

    /// How many directories are directly inside `path` (for a directory's link count).
    fn subdirectories(&self, path: &str) -> u32 {
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        self.entries
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter(|(p, e)| {
                !p.is_empty()
                    && *p != path
                    && !p[prefix.len()..].contains('/')
                    && e.kind == Kind::Dir
            })
            .count() as u32
    }

    /// Kilobytes the files take once installed, rounded up per file (PackageInfo and the
    /// Distribution show it as the size of the installation).
    pub fn install_kbytes(&self) -> u64 {
        self.entries
            .values()
            .map(|e| (e.size() as u64).div_ceil(1024))
            .sum()
    }

    /// The tree as an odc cpio archive, as `pax -x cpio` and `pkgbuild` write one: names
    /// `.` and `./path`, inode numbers in archive order, a directory's link count 2 plus its
    /// subdirectories, every mtime `mtime`, the `TRAILER!!!` entry, then zeros up to a
    /// 512-byte block.
    pub fn cpio(&self, mtime: u32) -> Result<Vec<u8>> {
        let mut out = OdcBuilder::new(Vec::new());
        out.default_mtime(
            chrono::DateTime::from_timestamp(i64::from(mtime), 0).unwrap_or_default(),
        );
        out.default_mode_file(0);
        for (inode, (path, entry)) in self.entries.iter().enumerate() {
            let header = OdcHeader {
                dev: 0,
                inode: inode as u32 + 1,
                mode: entry.mode(),
                uid: entry.uid,
                gid: entry.gid,
                nlink: match entry.kind {
                    Kind::Dir => 2 + self.subdirectories(path),
                    Kind::File(_) => 1,
                },
                rdev: 0,
                mtime,
                file_size: entry.size() as u64,
                name: if path.is_empty() {
                    ".".to_string()
                } else {
                    format!("./{path}")
                },
            };
            let data: &[u8] = match &entry.kind {
                Kind::Dir => &[],
                Kind::File(d) => d,
            };
            out.append_header_with_data(header, data)
                .map_err(|e| err!("cpio: {path}: {e}"))?;
        }
        let mut bytes = out.into_inner().map_err(|e| err!("cpio: {e}"))?;
        bytes.resize(bytes.len().div_ceil(512) * 512, 0);
        Ok(bytes)
    }
}

pub fn dir(perm: u32, uid: u32, gid: u32) -> Entry {
    Entry {
        kind: Kind::Dir,
        perm,
        uid,
        gid,
    }
}

pub fn file(data: Vec<u8>, perm: u32, uid: u32, gid: u32) -> Entry {
    Entry {
        kind: Kind::File(data),
        perm,
        uid,
        gid,
    }
}

#[cfg(unix)]
fn owner_may_execute(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o100 != 0
}

#[cfg(not(unix))]
fn owner_may_execute(_meta: &std::fs::Metadata) -> bool {
    false
}

/// gzip with no file name and a zero time in its header, so that the bytes depend on the
/// data only.
pub fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    gz.write_all(data).map_err(|e| err!("gzip: {e}"))?;
    gz.finish().map_err(|e| err!("gzip: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpio_archive::{odc::OdcReader, CpioReader};
    use std::io::Read;

    fn sample() -> Tree {
        let mut t = Tree::new(0o755, ROOT, WHEEL);
        t.add("Library", dir(0o755, ROOT, WHEEL)).unwrap();
        t.add("Library/Application Support", dir(0o755, ROOT, ADMIN))
            .unwrap();
        t.add(
            "Library/a.sh",
            file(b"#!/bin/sh\n".to_vec(), 0o755, ROOT, WHEEL),
        )
        .unwrap();
        t
    }

    #[test]
    fn a_path_needs_its_directory_and_plain_components() {
        let mut t = sample();
        for bad in ["", "/abs", "a//b", "./a", "Library/../x", "nodir/x"] {
            assert!(t.add(bad, dir(0o755, 0, 0)).is_err(), "{bad}");
        }
        assert!(t.add("Library/a.sh/x", file(vec![], 0o644, 0, 0)).is_err());
        assert!(t.add("Library", dir(0o755, 0, 0)).is_err(), "twice");
        assert!(t.add("Library/s", dir(0o4755, 0, 0)).is_err(), "setuid");
    }

    #[test]
    fn cpio_lists_root_then_sorted_paths_with_modes_owners_and_link_counts() {
        let bytes = sample().cpio(1_700_000_000).unwrap();
        assert_eq!(bytes.len() % 512, 0);
        let mut r = OdcReader::new(std::io::Cursor::new(bytes));
        let mut seen = Vec::new();
        while let Some(h) = r.read_next().unwrap() {
            let mut data = Vec::new();
            r.read_to_end(&mut data).unwrap();
            seen.push((
                h.name().to_string(),
                h.mode(),
                h.uid(),
                h.gid(),
                h.nlink(),
                data,
            ));
        }
        let names: Vec<_> = seen.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(
            names,
            [
                ".",
                "./Library",
                "./Library/Application Support",
                "./Library/a.sh"
            ]
        );
        assert_eq!(seen[0].1, 0o40755);
        assert_eq!(seen[0].4, 3, "root: 2 + one subdirectory");
        assert_eq!(seen[1].4, 3, "Library: 2 + Application Support");
        assert_eq!((seen[2].1, seen[2].3), (0o40755, ADMIN));
        assert_eq!((seen[3].1, seen[3].4), (0o100755, 1));
        assert_eq!(seen[3].5, b"#!/bin/sh\n");
    }

    #[test]
    fn gzip_output_depends_on_the_data_only() {
        let a = gzip(b"same").unwrap();
        assert_eq!(a, gzip(b"same").unwrap());
        assert_eq!(&a[4..8], &[0, 0, 0, 0], "mtime field is zero");
        assert_eq!(a[3] & 0x08, 0, "no FNAME");
    }
}
