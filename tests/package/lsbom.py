#!/usr/bin/env python3
"""Lists a Bom file as Apple's lsbom does, without the code that wrote it.

    lsbom.py BOM

One line per path, in the order of the Paths tree: for a directory "PATH<TAB>MODE<TAB>UID/GID",
for a file "PATH<TAB>MODE<TAB>UID/GID<TAB>SIZE<TAB>CKSUM" (MODE in octal with its type bits,
CKSUM the POSIX cksum, in decimal). Read from the format as bomutils' bom.h describes it: a
BOMStore header, a block table, named variables; the variable Paths is a tree whose leaves
hold (PathInfo1, File) block pairs; PathInfo1 points to the path's record (PathInfo2); a File
names the path's parent id. Also checks what a reader relies on: the index ends the file, leaf
links run both ways, keys come in (parent id, name) order, and the path count agrees with the
tree and BomInfo. Exits 1 on any inconsistency.
"""
import struct
import sys


def fail(msg):
    sys.exit("lsbom.py: " + msg)


def main(path):
    data = open(path, "rb").read()
    if data[:8] != b"BOMStore":
        fail("not a BOMStore")
    version, nblocks, index_off, index_len, vars_off, vars_len = struct.unpack(">6I", data[8:32])
    if index_off + index_len != len(data):
        fail("the block index does not end the file")
    count = struct.unpack(">I", data[index_off:index_off + 4])[0]
    table = [struct.unpack(">II", data[index_off + 4 + 8 * i:index_off + 12 + 8 * i]) for i in range(count)]
    if table[0] != (0, 0):
        fail("block 0 is not the null block")
    if sum(1 for a, n in table if n) != nblocks:
        fail("the header's block count disagrees with the table")

    def block(i):
        if not 0 < i < count:
            fail("block index %d out of range" % i)
        a, n = table[i]
        return data[a:a + n]

    variables = {}
    nvars = struct.unpack(">I", data[vars_off:vars_off + 4])[0]
    at = vars_off + 4
    for _ in range(nvars):
        idx, n = struct.unpack(">IB", data[at:at + 5])
        variables[data[at + 5:at + 5 + n].decode()] = idx
        at += 5 + n
    for name in ("BomInfo", "Paths", "HLIndex", "VIndex", "Size64"):
        if name not in variables:
            fail("variable %s missing" % name)

    tree = block(variables["Paths"])
    if tree[:4] != b"tree":
        fail("Paths is not a tree")
    child, _bsize, path_count = struct.unpack(">III", tree[8:20])
    leaf_idx = child
    node = block(leaf_idx)
    while struct.unpack(">H", node[:2])[0] == 0:  # a branch: descend to its first child
        leaf_idx = struct.unpack(">I", node[12:16])[0]
        node = block(leaf_idx)
    names = {}
    rows = []
    previous_key = None
    previous_leaf = 0
    while True:
        is_leaf, n, forward, backward = struct.unpack(">HHII", node[:12])
        if backward != previous_leaf:
            fail("leaf %d links backward to %d, not %d" % (leaf_idx, backward, previous_leaf))
        for k in range(n):
            i1, f = struct.unpack(">II", node[12 + 8 * k:20 + 8 * k])
            path_id, record_idx = struct.unpack(">II", block(i1))
            fb = block(f)
            parent = struct.unpack(">I", fb[:4])[0]
            name = fb[4:fb.index(b"\0", 4)].decode()
            key = (parent, name.encode())
            if previous_key is not None and key <= previous_key:
                fail("keys out of order at %r" % name)
            previous_key = key
            full = name if parent == 0 else names[parent] + "/" + name
            names[path_id] = full
            r = block(record_idx)
            kind, _u0, _arch, mode, uid, gid, _mtime, size, _u1, cksum, linklen = \
                struct.unpack(">BBHHIIIIBII", r[:31])
            if kind == 2:
                rows.append("%s\t%o\t%d/%d" % (full, mode, uid, gid))
            elif kind == 1:
                rows.append("%s\t%o\t%d/%d\t%d\t%d" % (full, mode, uid, gid, size, cksum))
            else:
                fail("%s: path type %d is not a file or a directory" % (full, kind))
        if forward == 0:
            break
        previous_leaf, leaf_idx = leaf_idx, forward
        node = block(leaf_idx)
    if len(rows) != path_count:
        fail("the tree says %d paths, the leaves hold %d" % (path_count, len(rows)))
    info = block(variables["BomInfo"])
    if struct.unpack(">I", info[4:8])[0] != len(rows) + 1:
        fail("BomInfo's path count is not the number of paths + 1")
    print("\n".join(rows))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
