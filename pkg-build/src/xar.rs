//! XAR, the container of a flat package: a 28-byte header, the table of contents (XML,
//! zlib-compressed), then the heap: the table of contents' SHA-1 checksum at heap offset 0,
//! then each file's data in table-of-contents order.
//!
//! The table of contents is `apple-xar`'s own model and serializer, the same code rcodesign
//! reads and rewrites when it signs the package (it moves the data behind the signature it
//! inserts, in file-id order, which is why data is laid out in id order here too). apple-xar
//! has no constructor for an empty table of contents, so one is parsed from [`EMPTY_TOC`] and
//! then filled in.

use crate::{err, Result};
use apple_xar::format::XarHeader;
use apple_xar::table_of_contents::{
    Checksum, ChecksumType, File, FileChecksum, FileData, FileEncoding, FileType, TableOfContents,
};
use scroll::IOwrite;
use std::io::Write;

/// `xar!`.
const MAGIC: u32 = 0x7861_7221;
const HEADER_SIZE: u16 = 28;
/// The header's checksum algorithm number for SHA-1 (xar.h `XAR_CKSUM_SHA1`).
const CKSUM_SHA1: u32 = 1;
const SHA1_SIZE: u64 = 20;

/// A table of contents for apple-xar to parse into its model; everything in it is replaced.
const EMPTY_TOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<xar><toc><creation-time>1970-01-01T00:00:00</creation-time>
<checksum style="sha1"><offset>0</offset><size>20</size></checksum>
<file id="1"><type>file</type><name>-</name></file></toc></xar>"#;

/// How a file's data is stored in the heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// As is (`application/octet-stream`): for data that is compressed already (Payload, Scripts).
    Stored,
    /// zlib (`application/x-gzip`, the name xar gives it).
    Zlib,
}

/// An entry of the archive.
pub enum Node<'a> {
    File {
        name: &'a str,
        data: &'a [u8],
        encoding: Encoding,
    },
    Dir {
        name: &'a str,
        children: Vec<Node<'a>>,
    },
}

/// Writes a XAR holding `nodes`. Every entry is owned by root:wheel, files 0644 and
/// directories 0755, with every time set to `time` (`YYYY-MM-DDTHH:MM:SS`, UTC; entries carry
/// it with xar's `Z` suffix, the table of contents' creation time without, as Apple's xar
/// writes them); ids are given depth first, in the order of `nodes`.
pub fn write(nodes: &[Node<'_>], time: &str) -> Result<Vec<u8>> {
    let mut toc = TableOfContents::from_reader(EMPTY_TOC.as_bytes())
        .map_err(|e| err!("xar: the empty table of contents does not parse: {e}"))?;
    let mut heap = Vec::new();
    let mut next_id = 1;
    let mut files = Vec::new();
    for node in nodes {
        files.push(toc_file(node, time, &mut next_id, &mut heap)?);
    }
    toc.creation_time = time.to_string();
    toc.checksum = Checksum {
        style: ChecksumType::Sha1,
        offset: 0,
        size: SHA1_SIZE,
    };
    toc.files = files;
    toc.signature = None;
    toc.x_signature = None;

    let xml = toc.to_xml().map_err(|e| err!("xar: {e}"))?;
    let compressed = zlib(&xml)?;
    let checksum = sha1(&compressed)?;
    let header = XarHeader {
        magic: MAGIC,
        size: HEADER_SIZE,
        version: 1,
        toc_length_compressed: compressed.len() as u64,
        toc_length_uncompressed: xml.len() as u64,
        checksum_algorithm_id: CKSUM_SHA1,
    };
    let mut out = Vec::new();
    out.iowrite_with(header, scroll::BE)
        .map_err(|e| err!("xar header: {e}"))?;
    out.extend(compressed);
    out.extend(checksum);
    out.extend(heap);
    Ok(out)
}

fn toc_file(node: &Node<'_>, time: &str, next_id: &mut u64, heap: &mut Vec<u8>) -> Result<File> {
    let id = *next_id;
    *next_id += 1;
    let stamp = format!("{time}Z");
    let (name, file_type, mode, data, files) = match node {
        Node::File {
            name,
            data,
            encoding,
        } => {
            let (archived, style) = match encoding {
                Encoding::Stored => (data.to_vec(), "application/octet-stream"),
                Encoding::Zlib => (zlib(data)?, "application/x-gzip"),
            };
            let file_data = FileData {
                offset: SHA1_SIZE + heap.len() as u64,
                size: data.len() as u64,
                length: archived.len() as u64,
                extracted_checksum: FileChecksum {
                    style: ChecksumType::Sha1,
                    checksum: hex(&sha1(data)?),
                },
                archived_checksum: FileChecksum {
                    style: ChecksumType::Sha1,
                    checksum: hex(&sha1(&archived)?),
                },
                encoding: FileEncoding {
                    style: style.to_string(),
                },
            };
            heap.extend(archived);
            (*name, FileType::File, "0644", Some(file_data), Vec::new())
        }
        Node::Dir { name, children } => {
            let mut files = Vec::new();
            for child in children {
                files.push(toc_file(child, time, next_id, heap)?);
            }
            (*name, FileType::Directory, "0755", None, files)
        }
    };
    if name.is_empty() || name.contains('/') {
        return Err(err!("xar: '{name}' is not a file name"));
    }
    Ok(File {
        id,
        ctime: Some(stamp.clone()),
        mtime: Some(stamp.clone()),
        atime: Some(stamp),
        names: vec![name.to_string()],
        file_type,
        mode: Some(mode.to_string()),
        deviceno: None,
        inode: None,
        uid: Some(0),
        gid: Some(0),
        user: Some("root".to_string()),
        group: Some("wheel".to_string()),
        size: None,
        data,
        ea: None,
        finder_create_time: None,
        files,
    })
}

fn zlib(data: &[u8]) -> Result<Vec<u8>> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).map_err(|e| err!("zlib: {e}"))?;
    z.finish().map_err(|e| err!("zlib: {e}"))
}

fn sha1(data: &[u8]) -> Result<Vec<u8>> {
    ChecksumType::Sha1
        .digest_data(data)
        .map_err(|e| err!("sha1: {e}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use apple_xar::reader::XarReader;

    #[test]
    fn apple_xar_reads_back_names_data_and_checksums() {
        let nodes = [
            Node::Dir {
                name: "c.pkg",
                children: vec![
                    Node::File {
                        name: "Bom",
                        data: b"bom bytes",
                        encoding: Encoding::Zlib,
                    },
                    Node::File {
                        name: "Payload",
                        data: b"already gzipped",
                        encoding: Encoding::Stored,
                    },
                ],
            },
            Node::File {
                name: "Distribution",
                data: b"<installer-gui-script/>",
                encoding: Encoding::Zlib,
            },
        ];
        let bytes = write(&nodes, "2001-02-03T04:05:06").unwrap();
        assert_eq!(bytes, write(&nodes, "2001-02-03T04:05:06").unwrap());
        let mut r = XarReader::new(std::io::Cursor::new(bytes)).unwrap();
        assert!(r.verify_table_of_contents_checksum().unwrap());
        let names: Vec<_> = r
            .files()
            .unwrap()
            .into_iter()
            .map(|(n, f)| (n, f.id))
            .collect();
        assert_eq!(
            names,
            [
                ("c.pkg".to_string(), 1),
                ("c.pkg/Bom".to_string(), 2),
                ("c.pkg/Payload".to_string(), 3),
                ("Distribution".to_string(), 4)
            ]
        );
        let get = |r: &mut XarReader<_>, p| r.get_file_data_from_path(p).unwrap().unwrap();
        assert_eq!(get(&mut r, "c.pkg/Bom"), b"bom bytes");
        assert_eq!(get(&mut r, "c.pkg/Payload"), b"already gzipped");
        assert_eq!(get(&mut r, "Distribution"), b"<installer-gui-script/>");
        assert_eq!(r.table_of_contents().creation_time, "2001-02-03T04:05:06");
    }

    #[test]
    fn a_name_with_a_slash_is_refused() {
        let nodes = [Node::File {
            name: "a/b",
            data: b"",
            encoding: Encoding::Stored,
        }];
        assert!(write(&nodes, "2001-02-03T04:05:06").is_err());
    }
}
