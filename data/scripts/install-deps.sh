#!/bin/sh
# Installs what building, testing and running vmsup needs on Debian 12.
# Idempotent: does nothing when everything is there already.
set -eu

packages="meson ninja-build pkg-config gcc clang libclang-rt-14-dev
libglib2.0-dev libglib2.0-bin libjson-glib-dev libsoup-3.0-dev
gettext python3-docutils dbus dbus-daemon
qemu-system-x86 qemu-utils
busybox-static kmod cpio gzip xz-utils zstd python3
qemu-guest-agent dropbear-bin openssl curl
polkitd systemd strace
zsh fish clang-format-14
mmdebstrap fakeroot dosfstools mtools gdisk e2fsprogs ovmf openssh-client
prometheus openssh-server"

missing=""
for p in $packages; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# the guest build downloads Debian's kernel package: it needs apt's lists
if [ -n "$missing" ] || ! apt-cache show linux-image-amd64 >/dev/null 2>&1; then
	$SUDO apt-get update -q
fi

if [ -n "$missing" ]; then
	echo "Installing:$missing"
	# the guest agent on the host is only a source of files for the guest: keep its service off
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi

# vmsupd runs the QEMU of root's VMs as this system user (data/sysusers.d/vmsup.conf)
if ! getent passwd vmsup-qemu >/dev/null; then
	echo "Creating the system user vmsup-qemu"
	$SUDO useradd --system --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin --comment "vmsup QEMU" vmsup-qemu
fi
