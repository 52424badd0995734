#!/usr/bin/env bash
# Install the system packages that the tests and experiments need (fio for
# the Linux block reference rows, gcc for the native analogs), only those
# missing, with apt-get as root. Otherwise say what is missing and go on:
# the rows that need it are then left out. Quick when all is present.
set -euo pipefail

declare -A package_of=([fio]=fio [gcc]=gcc)  # command -> Debian package
missing=()
for cmd in "${!package_of[@]}"; do
    command -v "$cmd" >/dev/null || missing+=("${package_of[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "system-deps: missing ${missing[*]} (install as root with apt-get to get them)" >&2
    exit 0
fi
echo "system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
