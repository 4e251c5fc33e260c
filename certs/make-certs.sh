#!/usr/bin/env bash
# Regenerates every certificate, key and secret in this folder with openssl alone.
# All of it is test material: no real cluster's key or secret is ever kept here.
set -euo pipefail
cd "$(dirname "$0")"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Test-only cluster domain secrets, in Ganeti's format (40 lowercase hex + newline).
printf '%s\n' 0123456789abcdef0123456789abcdef01234567 > test-secret
printf '%s\n' fedcba9876543210fedcba9876543210fedcba98 > other-secret

# A self-signed RSA-2048/SHA-256 certificate with CN=localhost and explicit validity dates.
# `openssl ca -selfsign` is the only openssl 3.0 command that takes arbitrary start/end dates.
make_cert() { # name startdate enddate
    local name=$1 start=$2 end=$3
    openssl genrsa -out "$name.key" 2048 2>/dev/null
    cat > "$work/ca.cnf" <<CNF
[ca]
default_ca = test
[test]
database = $work/index
new_certs_dir = $work
serial = $work/serial
default_md = sha256
policy = anything
email_in_dn = no
copy_extensions = none
[anything]
commonName = supplied
[req]
distinguished_name = dn
prompt = no
[dn]
CN = localhost
[ext]
subjectAltName = DNS:localhost,DNS:ganeti.example.com
CNF
    : > "$work/index"
    printf '%s\n' 01 > "$work/serial"
    openssl req -new -key "$name.key" -out "$work/$name.csr" -config "$work/ca.cnf"
    openssl ca -batch -selfsign -config "$work/ca.cnf" -keyfile "$name.key" -in "$work/$name.csr" \
        -startdate "$start" -enddate "$end" -extensions ext -notext -out "$name.pem" 2>/dev/null
    chmod 0644 "$name.key" "$name.pem"
}

# Ganeti's signed form: "X-Ganeti-Signature: salt/HMAC-SHA1(secret, salt || canonical PEM)\n\n" + PEM.
sign_cert() { # pem secret-file salt out
    local pem=$1 secret=$2 salt=$3 out=$4 canonical mac
    canonical="$work/canonical.pem"
    openssl x509 -in "$pem" -out "$canonical"
    mac=$( { printf '%s' "$salt"; cat "$canonical"; } | openssl dgst -sha1 -hmac "$(head -n1 "$secret")" -r | cut -d' ' -f1)
    { printf 'X-Ganeti-Signature: %s/%s\n\n' "$salt" "$mac"; cat "$canonical"; } > "$out"
}

make_cert test-a 20260101000000Z 21260101000000Z
make_cert test-b 20260101000000Z 21260101000000Z
make_cert expired 20100101000000Z 20100102000000Z
make_cert future 20990101000000Z 20991231000000Z

sign_cert test-a.pem test-secret a1b2c3d4e5f60718 test-a.signed
sign_cert test-b.pem test-secret b1b2c3d4e5f60718 test-b.signed
sign_cert expired.pem test-secret c1b2c3d4e5f60718 expired.signed
sign_cert future.pem test-secret d1b2c3d4e5f60718 future.signed
sign_cert test-a.pem other-secret e1b2c3d4e5f60718 wrong-secret.signed

echo "regenerated test certificates in $(pwd)"
