#!/usr/bin/env bash
# Install the system packages that the tests and experiments need (fio for
# the Linux block reference rows, gcc for the native analogs, nginx, wrk, ab,
# memcached, memcaslap and curl for the real servers and clients beside our
# domains, chromium and a font for the browser test), only those missing, with apt-get as root. Otherwise say what is missing and go on:
# the rows that need it are then left out. Quick when all is present.
set -euo pipefail

declare -A package_of=([fio]=fio [gcc]=gcc [nginx]=nginx [wrk]=wrk [ab]=apache2-utils
                       [memcached]=memcached [memcaslap]=libmemcached-tools [curl]=curl
                       [ip]=iproute2 [taskset]=util-linux [chromium]=chromium
                       [fc-list]=fontconfig)  # command -> Debian package
missing=()
for cmd in "${!package_of[@]}"; do
    command -v "$cmd" >/dev/null || [ -x "/usr/sbin/$cmd" ] || missing+=("${package_of[$cmd]}")
done
# chromium draws text only with a font (its recommended ones are not installed)
[ -d /usr/share/fonts/truetype/dejavu ] || missing+=(fonts-dejavu-core)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "system-deps: missing ${missing[*]} (install as root with apt-get to get them)" >&2
    exit 0
fi
echo "system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# the experiments start their own servers on free ports: the packages' services stay off
for service in nginx memcached; do
    command -v invoke-rc.d >/dev/null && invoke-rc.d "$service" stop >/dev/null 2>&1 || true
done
