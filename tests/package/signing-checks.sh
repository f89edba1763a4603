# shellcheck shell=bash
# Part of tests/suites/package.sh (sourced; uses its $tmp, $pkg, $scripts, $readers and the
# report functions): scripts/sign.sh --pkg with a real rcodesign and a certificate chain made
# here (a root CA, an intermediate, a "Developer ID Installer" leaf), offline: the time-stamp
# server is turned off and, where unshare works, the signing runs without a network. The
# signature is then read back by tests/package/xar_signature.py and verified with openssl.
# The notary service is only ever named in --dry-run.
# shellcheck disable=SC2154 # tmp, pkg, scripts, readers: set by tests/suites/package.sh

sig=$tmp/sig
mkdir -p "$sig"

# make_test_chain DIR: root.pem, inter.pem/.der, root.der, leaf.pem and leaf.p12 (password in pw).
make_test_chain() {
    local d=$1
    cat >"$d/ext.cnf" <<'CNF'
[root]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[inter]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
# Apple's marker of a Developer ID Installer certificate (not critical, so openssl accepts it)
1.2.840.113635.100.6.1.14 = ASN1:NULL
[req]
distinguished_name = dn
[dn]
CNF
    (
        cd "$d" || exit 1
        openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.pem -days 3650 \
            -subj "/CN=tunnel.kext Test Root CA/O=tunnel.kext tests" -config ext.cnf -extensions root &&
            openssl req -newkey rsa:2048 -nodes -keyout inter.key -out inter.csr -config ext.cnf \
                -subj "/CN=tunnel.kext Test Developer ID Certification Authority/O=tunnel.kext tests" &&
            openssl x509 -req -in inter.csr -CA root.pem -CAkey root.key -CAcreateserial -out inter.pem \
                -days 3650 -extfile ext.cnf -extensions inter &&
            openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -config ext.cnf \
                -subj "/UID=TESTTEAM01/CN=Developer ID Installer: Tunnel Test (TESTTEAM01)/OU=TESTTEAM01/O=Tunnel Test/C=US" &&
            openssl x509 -req -in leaf.csr -CA inter.pem -CAkey inter.key -CAcreateserial -out leaf.pem \
                -days 3650 -extfile ext.cnf -extensions leaf &&
            printf 'test-password' >pw &&
            # The legacy PKCS#12 encryption: rcodesign's reader takes no other (OpenSSL 3 defaults to AES).
            openssl pkcs12 -export -inkey leaf.key -in leaf.pem -out leaf.p12 -passout file:pw \
                -keypbe PBE-SHA1-3DES -certpbe PBE-SHA1-3DES -macalg sha1 &&
            openssl x509 -in inter.pem -outform DER -out inter.der &&
            openssl x509 -in root.pem -outform DER -out root.der &&
            openssl x509 -in leaf.pem -outform DER -out leaf.der
    ) >"$d/openssl.log" 2>&1
}

# --- sign.sh --pkg without rcodesign doing anything -----------------------------------------------
cp "$pkg" "$sig/unsigned.pkg"
printf '{}' >"$sig/key.json"
printf 'x' >"$sig/dummy.p12"
"$scripts/sign.sh" --pkg --dry-run --p12 "$sig/dummy.p12" --api-key "$sig/key.json" "$sig/unsigned.pkg" >"$sig/out" 2>&1
rc=$?
if [ "$rc" = 0 ] && grep -qxF "would run: rcodesign sign --p12-file $sig/dummy.p12 $sig/unsigned.pkg" "$sig/out" &&
    grep -qxF "would run: rcodesign notary-submit --api-key-file $sig/key.json --staple $sig/unsigned.pkg" "$sig/out" &&
    cmp -s "$pkg" "$sig/unsigned.pkg"; then
    pass "sign.sh --pkg --dry-run prints the rcodesign sign and notary-submit --staple commands and changes nothing"
else
    fail "sign.sh --pkg --dry-run prints the rcodesign sign and notary-submit --staple commands and changes nothing" "rc=$rc" "$(cat "$sig/out")"
fi
"$scripts/sign.sh" --pkg "$sig/unsigned.pkg" >"$sig/out" 2>&1
rc=$?
if [ "$rc" = 1 ] && grep -q "No signing certificate" "$sig/out" && grep -q "Developer ID Installer" "$sig/out" &&
    grep -q "TUNNEL_INSTALLER_P12" "$sig/out"; then
    pass "sign.sh --pkg without a certificate asks for a Developer ID Installer one and signs nothing"
else
    fail "sign.sh --pkg without a certificate asks for a Developer ID Installer one and signs nothing" "rc=$rc" "$(cat "$sig/out")"
fi
"$scripts/sign.sh" --pkg --dry-run --p12 "$sig/dummy.p12" "$tmp/x/Distribution" >"$sig/out" 2>&1
rc=$?
if [ "$rc" = 1 ] && grep -q "is not an installer package" "$sig/out"; then
    pass "sign.sh --pkg refuses a file that is not a flat package"
else
    fail "sign.sh --pkg refuses a file that is not a flat package" "rc=$rc" "$(cat "$sig/out")"
fi

# --- a real signature -------------------------------------------------------------------------------
if ! have rcodesign; then
    skip "sign.sh --pkg with a test certificate: rcodesign is not installed (RCODESIGN_INSTALL=1 scripts/test.sh or scripts/release.sh installs it, ~15 min once)"
elif ! have openssl; then
    skip "sign.sh --pkg with a test certificate: openssl is not installed"
elif ! make_test_chain "$sig"; then
    fail "a test certificate chain (root, intermediate, Developer ID Installer leaf) is made with openssl" "$(tail -n 5 "$sig/openssl.log")"
else
    cp "$pkg" "$sig/signed.pkg"
    offline=()
    unshare -n true 2>/dev/null && offline=(unshare -n)
    ${offline[@]+"${offline[@]}"} "$scripts/sign.sh" --pkg --p12 "$sig/leaf.p12" --p12-password-file "$sig/pw" \
        --chain "$sig/inter.der" --chain "$sig/root.der" --timestamp-url none "$sig/signed.pkg" >"$sig/out" 2>&1
    rc=$?
    where="offline"
    [ ${#offline[@]} -gt 0 ] && where="in a network namespace without network"
    if [ "$rc" = 0 ] && grep -q "Signed (Developer ID Installer): $sig/signed.pkg" "$sig/out"; then
        pass "sign.sh --pkg signs with rcodesign and a test Developer ID Installer certificate ($where)"
    else
        fail "sign.sh --pkg signs with rcodesign and a test Developer ID Installer certificate ($where)" "rc=$rc" "$(tail -n 20 "$sig/out")"
    fi

    if python3 "$readers/xar_signature.py" "$sig/signed.pkg" "$sig/read" >"$sig/read.out" 2>&1 &&
        grep -qx 'toc_checksum=sha1 ok' "$sig/read.out" &&
        grep -qE '^signature=RSA offset=20 size=256 certificates=3$' "$sig/read.out" &&
        grep -qE '^x-signature=CMS offset=276 size=[0-9]+ certificates=3$' "$sig/read.out" &&
        grep -qx 'file_data_after_signatures=yes' "$sig/read.out"; then
        pass "signature section: SHA-1 checksum of the table of contents, RSA signature (2048-bit) after it, CMS signature, 3 certificates, file data moved behind"
    else
        fail "signature section: SHA-1 checksum of the table of contents, RSA signature (2048-bit) after it, CMS signature, 3 certificates, file data moved behind" "$(cat "$sig/read.out")"
    fi
    if cmp -s "$sig/read/cert-0.der" "$sig/leaf.der" && cmp -s "$sig/read/cert-1.der" "$sig/inter.der" &&
        cmp -s "$sig/read/cert-2.der" "$sig/root.der" &&
        openssl x509 -inform DER -in "$sig/read/cert-0.der" -out "$sig/read/leaf.pem" 2>/dev/null &&
        openssl x509 -inform DER -in "$sig/read/cert-1.der" -out "$sig/read/inter.pem" 2>/dev/null &&
        openssl verify -CAfile "$sig/root.pem" -untrusted "$sig/read/inter.pem" "$sig/read/leaf.pem" >"$sig/verify.out" 2>&1 &&
        openssl x509 -in "$sig/read/leaf.pem" -noout -subject | grep -q "Developer ID Installer: Tunnel Test (TESTTEAM01)"; then
        pass "certificate chain in the signature: leaf (Developer ID Installer), intermediate, root, in order; openssl verifies it"
    else
        fail "certificate chain in the signature: leaf (Developer ID Installer), intermediate, root, in order; openssl verifies it" "$(cat "$sig/verify.out" 2>/dev/null)"
    fi
    openssl x509 -in "$sig/leaf.pem" -pubkey -noout >"$sig/leaf.pub" 2>/dev/null
    # rcodesign's RSA signature is PKCS#1 v1.5 with SHA-256 over the table of contents' SHA-1 checksum.
    if openssl dgst -sha256 -verify "$sig/leaf.pub" -signature "$sig/read/rsa.sig" "$sig/read/toc-digest.bin" >"$sig/rsa.out" 2>&1; then
        pass "RSA signature verifies with the leaf's public key over the table of contents' checksum"
    else
        fail "RSA signature verifies with the leaf's public key over the table of contents' checksum" "$(cat "$sig/rsa.out")"
    fi
    if openssl cms -verify -inform DER -in "$sig/read/cms.der" -binary -content "$sig/read/toc-digest.bin" \
        -CAfile "$sig/root.pem" -certfile "$sig/inter.pem" -purpose any -out /dev/null >"$sig/cms.out" 2>&1; then
        pass "CMS signature verifies over the table of contents' checksum, up to the test root"
    else
        fail "CMS signature verifies over the table of contents' checksum, up to the test root" "$(cat "$sig/cms.out")"
    fi
    mkdir -p "$sig/x"
    if [ "$(bsdtar -tf "$sig/signed.pkg" 2>&1)" = "$(bsdtar -tf "$pkg")" ] &&
        bsdtar -xf "$sig/signed.pkg" -C "$sig/x" 2>/dev/null &&
        diff -r "$tmp/x" "$sig/x" >/dev/null; then
        pass "the signed package lists and extracts as before: every file byte for byte the same"
    else
        fail "the signed package lists and extracts as before: every file byte for byte the same"
    fi
fi

# --- release.sh: the four steps, in order ---------------------------------------------------------
"$scripts/release.sh" --dry-run --p12 "$sig/app.p12" --installer-p12 "$sig/inst.p12" --api-key "$sig/key.json" >"$sig/out" 2>&1
rc=$?
want="would run: $scripts/build.sh
would run: $scripts/sign.sh --p12 $sig/app.p12 --api-key $sig/key.json
would run: $scripts/package.sh
would run: $scripts/sign.sh --pkg --p12 $sig/inst.p12 --api-key $sig/key.json"
if [ "$rc" = 0 ] && [ "$(cat "$sig/out")" = "$want" ]; then
    pass "release.sh --dry-run: build, sign the kext, package the signed bundle, sign the package (each notarized)"
else
    fail "release.sh --dry-run: build, sign the kext, package the signed bundle, sign the package (each notarized)" "rc=$rc" "$(cat "$sig/out")"
fi
"$scripts/release.sh" --p12 "$sig/app.p12" >"$sig/out" 2>&1
rc=$?
if [ "$rc" = 2 ] && grep -q "Developer ID Installer" "$sig/out"; then
    pass "release.sh without the installer certificate is a usage error naming it"
else
    fail "release.sh without the installer certificate is a usage error naming it" "rc=$rc" "$(cat "$sig/out")"
fi
