#!/usr/bin/env bash
# Build the takt-runner OCI image without pulling a base image: debootstrap --variant=minbase of
# Debian SUITE from this machine's apt mirror, packages.txt, requirements.lock (pip, hashes checked)
# and takt's runner code; cleaned of machine- and time-specific files, written by oci.py.
# Usage: build.sh OUT   (as root; OUT becomes an OCI image layout; the manifest digest is printed last)
# Env: SOURCE_DATE_EPOCH (default: the last commit touching the image's inputs), TAKT_IMAGE_NAME,
#      TAKT_IMAGE_CACHE (a directory of downloaded .debs and wheels kept between builds), PYTHON.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
out="${1:?usage: build.sh OUT}"
suite="${TAKT_IMAGE_SUITE:-bookworm}"
name="${TAKT_IMAGE_NAME:-takt-runner:0.1}"
python="${PYTHON:-python3}"
cache="${TAKT_IMAGE_CACHE:-$repo/build/image-cache}"
pyver=3.11  # bookworm's python3; requirements.lock is compiled for it

[ "$(id -u)" = 0 ] || { echo "build.sh: debootstrap and chroot need root" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "build.sh: debootstrap missing (apt-get install debootstrap)" >&2; exit 2; }
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH="$(git -C "$repo" log -1 --format=%ct -- targets/it_server/image runner frames compiler/bundle \
    compiler/__init__.py)"
fi
export SOURCE_DATE_EPOCH
read -r mirror keyring < <("$python" "$here/mirror.py" "$suite")

work="$(mktemp -d "${TMPDIR:-/tmp}/takt-image.XXXXXX")"
root="$work/root"
cleanup() {
  for m in proc sys dev/pts dev; do mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m"; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$cache/debs" "$cache/wheels" "$root"

# 1. the Debian root: minbase plus packages.txt and the suite's updates, from the machine's own mirror.
include="$(grep -v '^#' "$here/packages.txt" | grep . | paste -sd, -)"
debootstrap --variant=minbase --include="$include" --keyring="$keyring" --cache-dir="$cache/debs" \
  "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log" >&2; exit 1; }
# the suite's stable and security updates, from the machine's mirrors too; the sources go again in 5.
: >"$root/etc/apt/sources.list"
for s in "$suite" "$suite-updates" "$suite-security"; do
  if read -r uri _ < <("$python" "$here/mirror.py" "$s" 2>/dev/null); then echo "deb $uri $s main" >>"$root/etc/apt/sources.list"; fi
done
cp "$keyring" "$root/etc/apt/trusted.gpg.d/takt-image-archive.gpg"
chroot "$root" apt-get -qq update >>"$work/debootstrap.log" 2>&1 &&
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get -qq -y -o Dpkg::Use-Pty=0 upgrade >>"$work/debootstrap.log" 2>&1 ||
  { tail -30 "$work/debootstrap.log" >&2; exit 1; }
chroot "$root" apt-get -qq clean
rm -f "$root/etc/apt/sources.list" "$root/etc/apt/trusted.gpg.d/takt-image-archive.gpg"

# 2. the runner's dependencies, exactly requirements.lock (hashes checked), wheels only, no .pyc.
site="$root/usr/local/lib/python$pyver/dist-packages"
platforms=()  # bookworm's glibc is 2.36: every manylinux tag it runs, named (this pip does not expand them)
for v in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${v}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
"$python" -m pip install -q --no-deps --require-hashes --only-binary :all: --no-compile --no-warn-script-location \
  --disable-pip-version-check --cache-dir "$cache/wheels" \
  "${platforms[@]}" --implementation cp --python-version "$pyver" --abi "cp${pyver/./}" \
  --target "$site" -r "$here/requirements.lock"
rm -rf "$site/bin"  # console scripts of the dependencies (uaclient, …): the image runs only takt-runner

# 3. takt's own run-time code: runner/, frames/, compiler.bundle (standard library + cryptography).
(cd "$repo" && find runner frames compiler/bundle compiler/__init__.py -name '*.py' -not -path '*/__pycache__/*' \
  | sort | while read -r f; do install -D -m 0644 "$f" "$site/$f"; done)
printf '#!/usr/bin/python3\nimport sys\n\nfrom runner.cli import main\n\nsys.exit(main())\n' >"$root/usr/local/bin/takt-runner"
chmod 0755 "$root/usr/local/bin/takt-runner"

# 4. the non-root user the image runs as (no login, no home, no shell).
echo 'takt:x:10001:10001:takt-runner:/nonexistent:/usr/sbin/nologin' >>"$root/etc/passwd"
echo 'takt:x:10001:' >>"$root/etc/group"
echo 'takt:!::0:99999:7:::' >>"$root/etc/shadow"

# 5. what differs between two builds or machines goes: caches, logs, apt lists, backups, .pyc, the
# host's resolv.conf and hostname, dates in /etc/shadow; ld.so.cache is made again in the root.
for m in proc sys dev/pts; do mountpoint -q "$root/$m" && umount -l "$root/$m"; done
rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/cache/ldconfig/* \
  "$root"/var/log/* "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old "$root"/etc/*- \
  "$root"/etc/machine-id "$root"/etc/hostname "$root"/etc/resolv.conf "$root"/var/lib/dbus/machine-id \
  "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/tmp/* "$root"/run/* "$root"/dev/* \
  "$root"/proc/* "$root"/sys/* "$root"/root/.cache "$root"/debootstrap
find "$root" -depth \( -name __pycache__ -o -name '*.pyc' \) -exec rm -rf {} +
days=$((SOURCE_DATE_EPOCH / 86400))
sed -i -E "s/^([^:]*:[^:]*:)[0-9]+:/\1$days:/" "$root/etc/shadow"
chroot "$root" /sbin/ldconfig
rm -rf "$root"/var/cache/ldconfig/*
find "$root" -newermt "@$SOURCE_DATE_EPOCH" -print0 | xargs -0r touch --no-dereference --date="@$SOURCE_DATE_EPOCH"
chroot "$root" dpkg-query -W -f '${Package}=${Version}\n' >"$work/packages.lock"

# 6. the OCI layout, deterministically.
rm -rf "$out"
mkdir -p "$out"
cp "$work/packages.lock" "$out/debian-packages.txt"
digest="$("$python" "$here/oci.py" "$root" "$out/layout" "$name")"
echo "$name@$digest" >"$out/reference"
echo "$digest"
