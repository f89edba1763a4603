#!/usr/bin/env python3
"""Reads the signature of a signed XAR (a signed .pkg) without the code that wrote or signed it.

    xar_signature.py PKG OUTDIR

Parses the header and the zlib table of contents with the standard library (xar's format: a
28-byte big-endian header, the compressed table of contents, then the heap), checks that the
table of contents' checksum at its heap offset is the digest of the compressed table of contents,
and writes into OUTDIR what openssl then verifies: toc-digest.bin (that checksum), rsa.sig (the
<signature style="RSA"> bytes), cms.der (the <x-signature style="CMS"> bytes, without the zero
padding after the DER object) and cert-N.der (the X509Certificate elements of the RSA
signature's KeyInfo, in order). Prints key=value lines; exits 1 if something is missing or
inconsistent.
"""
import base64
import hashlib
import os
import struct
import sys
import xml.etree.ElementTree as ET
import zlib

DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512, "md5": hashlib.md5}


def der_length(data):
    """Length of the DER object at the start of data (tag, length, contents)."""
    if data[1] < 0x80:
        return 2 + data[1]
    n = data[1] & 0x7F
    return 2 + n + int.from_bytes(data[2:2 + n], "big")


def main(pkg, out):
    data = open(pkg, "rb").read()
    magic, hsize, version, toc_c, toc_u, alg = struct.unpack(">4sHHQQI", data[:28])
    if magic != b"xar!":
        sys.exit("not a xar archive")
    toc_z = data[hsize:hsize + toc_c]
    toc_xml = zlib.decompress(toc_z)
    if len(toc_xml) != toc_u:
        sys.exit("table of contents: %d bytes, the header says %d" % (len(toc_xml), toc_u))
    heap = hsize + toc_c
    toc = ET.fromstring(toc_xml).find("toc")
    ck = toc.find("checksum")
    style = ck.get("style").lower()
    off, size = int(ck.find("offset").text), int(ck.find("size").text)
    stored = data[heap + off:heap + off + size]
    digest = DIGESTS[style](toc_z).digest()
    print("toc_checksum=%s %s" % (style, "ok" if stored == digest else "MISMATCH"))
    if stored != digest:
        sys.exit(1)
    os.makedirs(out, exist_ok=True)
    open(os.path.join(out, "toc-digest.bin"), "wb").write(digest)
    found = {}
    for tag in ("signature", "x-signature"):
        sig = toc.find(tag)
        if sig is None:
            continue
        s_off, s_size = int(sig.find("offset").text), int(sig.find("size").text)
        blob = data[heap + s_off:heap + s_off + s_size]
        ns = "{http://www.w3.org/2000/09/xmldsig#}"
        certs = [base64.b64decode("".join(c.text.split()))
                 for c in sig.iter(ns + "X509Certificate")]
        found[sig.get("style")] = (blob, certs)
        print("%s=%s offset=%d size=%d certificates=%d" % (tag, sig.get("style"), s_off, s_size, len(certs)))
    if "RSA" not in found or "CMS" not in found:
        print("missing=%s" % " ".join(s for s in ("RSA", "CMS") if s not in found))
        sys.exit(1)
    open(os.path.join(out, "rsa.sig"), "wb").write(found["RSA"][0])
    cms = found["CMS"][0]
    open(os.path.join(out, "cms.der"), "wb").write(cms[:der_length(cms)])
    for i, cert in enumerate(found["RSA"][1]):
        open(os.path.join(out, "cert-%d.der" % i), "wb").write(cert)
    # Every file's data must lie after the signatures in the heap.
    first = min(int(d.find("offset").text) for d in toc.iter("data"))
    ends = max(s_off + s_size for s_off, s_size in
               ((int(toc.find(t).find("offset").text), int(toc.find(t).find("size").text))
                for t in ("signature", "x-signature")))
    print("file_data_after_signatures=%s" % ("yes" if first >= ends else "NO"))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
