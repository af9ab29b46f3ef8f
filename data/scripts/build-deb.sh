#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds a Debian binary package from an install of vmsup, the way a packager
# would (prefix /usr, directories from systemd.pc and dbus-1.pc, stripped
# binaries, dependencies from dpkg-shlibdeps, Built-Using from the bundled
# guest), then checks it with lintian, which must report no error.
#
#   data/scripts/build-deb.sh [OUTDIR]    (default: _deb in the source tree)
#
# Extra arguments for meson setup may come in $VMSUP_MESON_ARGS, for example
# -Dguest_kernel_deb=/path/to/linux-image-6.1.0-28-amd64_6.1.119-1_amd64.deb
# for a build that reaches no network.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mkdir -p "${1:-$top/_deb}" && cd "${1:-$top/_deb}" && pwd)
build=$out/build
root=$out/root
meta=$out/meta
arch=$(dpkg --print-architecture)

for tool in dpkg-deb dpkg-shlibdeps lintian strip; do
	command -v "$tool" >/dev/null || {
		echo "build-deb: $tool is missing (apt-get install dpkg-dev lintian binutils)" >&2
		exit 77
	}
done

rm -rf "$build" "$root" "$meta"
# the flags a Debian build gets (hardening included), as debhelper exports them
eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)"
# shellcheck disable=SC2086
meson setup "$build" "$top" --prefix=/usr --buildtype=release -Dtests=false \
	-Dguest=enabled -Dman=enabled ${VMSUP_MESON_ARGS:-} >/dev/null
ninja -C "$build" >/dev/null
DESTDIR=$root meson install -C "$build" --no-rebuild >/dev/null
version=$(meson introspect --projectinfo "$build" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')

# binaries as Debian ships them: stripped, without build notes
for f in "$root/usr/bin/vmsup" "$root/usr/libexec/vmsupd"; do
	strip --strip-unneeded --remove-section=.comment --remove-section=.note "$f"
done

# as dh_compress leaves them
find "$root/usr/share/man" -type f -exec gzip -9n {} +

doc=$root/usr/share/doc/vmsup
mkdir -p "$doc" "$root/usr/share/lintian/overrides"
cat >"$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: vmsup
Source: https://github.com/vmsup/vmsup

Files: *
Copyright: 2026 the vmsup developers
License: LGPL-2.1+
 This library is free software; you can redistribute it and/or modify it
 under the terms of the GNU Lesser General Public License as published by
 the Free Software Foundation; either version 2.1 of the License, or (at
 your option) any later version.
 .
 On Debian systems, the complete text of the GNU Lesser General Public
 License version 2.1 is in /usr/share/common-licenses/LGPL-2.1.
EOF
printf 'vmsup (%s-1) unstable; urgency=medium\n\n  * Package built from the source tree.\n\n -- vmsup developers <vmsup@example.org>  %s\n' \
	"$version" "$(date -R -u -d @"${SOURCE_DATE_EPOCH:-$(date +%s)}")" |
	gzip -9n >"$doc/changelog.Debian.gz"
# the guest's kernel is a static ELF by nature: it runs in the VM, not on the host
guestdir=$(cd "$root" && find usr/lib -path '*/vmsup/guest' -type d)
cat >"$root/usr/share/lintian/overrides/vmsup" <<EOF
vmsup: statically-linked-binary [$guestdir/vmlinux]
vmsup: shared-library-lacks-prerequisites [$guestdir/vmlinux]
# run by vmsupd for image.build, not by users
vmsup: no-manual-page [usr/libexec/vmsup-build-image]
EOF

# dpkg-shlibdeps reads the package list from a debian/control beside it
mkdir -p "$meta/debian" "$root/DEBIAN"
printf 'Source: vmsup\n\nPackage: vmsup\nArchitecture: any\n' >"$meta/debian/control"
depends=$(cd "$meta" && dpkg-shlibdeps -O -e"$root/usr/bin/vmsup" -e"$root/usr/libexec/vmsupd" 2>/dev/null |
	sed -n 's/^shlibs:Depends=//p')
built_using=$(cat "$root/$guestdir/built-using.txt" 2>/dev/null || true)
installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)

{
	echo "Package: vmsup"
	echo "Version: $version-1"
	echo "Architecture: $arch"
	echo "Maintainer: vmsup developers <vmsup@example.org>"
	echo "Installed-Size: $installed_size"
	echo "Depends: $depends, qemu-system-x86, qemu-utils, dbus, python3"
	# vmsup image build: the builder (a python3 script) drives these
	echo "Recommends: polkitd, mmdebstrap, fakeroot, e2fsprogs, dosfstools, mtools, gdisk"
	[ -z "$built_using" ] || echo "Built-Using: $built_using"
	echo "Section: admin"
	echo "Priority: optional"
	echo "Homepage: https://github.com/vmsup/vmsup"
	echo "Description: supervisor of QEMU virtual machines"
	echo " vmsupd runs QEMU virtual machines for a desktop session or the system"
	echo " and manages each over QMP and the guest agent; vmsup is its command"
	echo " line. Both speak a JSON-RPC socket, and a D-Bus interface mirrors it."
} >"$root/DEBIAN/control"
(cd "$root" && find etc -type f | sed 's|^|/|') >"$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort |
	xargs md5sum) >"$root/DEBIAN/md5sums"

deb=$out/vmsup_${version}-1_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "build-deb: $deb ($(du -h "$deb" | cut -f1))"
lintian --fail-on error --info --display-level '>=warning' "$deb"
echo "build-deb: lintian reports no error"
