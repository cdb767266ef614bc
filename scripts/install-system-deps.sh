#!/usr/bin/env bash
# Installs the Debian packages Kiban's tests use, only when missing (needs root for apt-get).
# openssl: the interop oracle for certificates, CRLs and OCSP;
# postgresql-client: pg_isready for CI's PostgreSQL pass;
# softhsm2: a software PKCS#11 token (libsofthsm2.so, softhsm2-util) for the HSM key store tests;
# opensc: pkcs11-tool, to inspect a token by hand;
# g++, make, python3: node-gyp compiles the pkcs11js add-on from source at npm install;
# time: /usr/bin/time -v measures wall time and peak memory of both sides in bench/.
set -euo pipefail
need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v pg_isready >/dev/null 2>&1 || need+=(postgresql-client)
{ [ -f /usr/lib/softhsm/libsofthsm2.so ] || command -v softhsm2-util >/dev/null 2>&1; } ||
  need+=(softhsm2)
command -v pkcs11-tool >/dev/null 2>&1 || need+=(opensc)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
command -v python3 >/dev/null 2>&1 || need+=(python3)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${need[*]} — install them with: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
