#!/bin/sh
# The demo: installs what is missing, builds, starts vmsupd, creates and
# starts a VM from the bundled guest, and shows its list, stats, health and
# web port (fetched from the host to prove it). Leaves the daemon and the VM
# running so you can try more; `demo.sh --stop` ends them.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build="$top/_build"
demo_dir="$build/demo"
sock="$demo_dir/vmsupd.sock"
vm=demo

vmsup() { "$build/src/cli/vmsup" --socket "$sock" "$@"; }

stop_demo() {
	if [ -S "$sock" ]; then
		vmsup stop "$vm" --force >/dev/null 2>&1 || true
		vmsup delete "$vm" --force >/dev/null 2>&1 || true
	fi
	if [ -f "$demo_dir/vmsupd.pid" ]; then
		kill "$(cat "$demo_dir/vmsupd.pid")" 2>/dev/null || true
		rm -f "$demo_dir/vmsupd.pid"
	fi
}

if [ "${1:-}" = "--stop" ]; then
	stop_demo
	echo "demo stopped"
	exit 0
fi

"$top/data/scripts/install-deps.sh"
[ -d "$build" ] || meson setup "$build" "$top"
ninja -C "$build"

export VMSUP_DATA_DIR="$build/data"
mkdir -p "$demo_dir"
stop_demo
"$build/src/daemon/vmsupd" --session --no-dbus \
	--state-dir "$demo_dir/state" --runtime-dir "$demo_dir/run" --socket "$sock" \
	>"$demo_dir/vmsupd.log" 2>&1 &
echo $! >"$demo_dir/vmsupd.pid"

# the daemon answers once it has probed the accelerator and loaded its VMs
tries=0
until vmsup info >/dev/null 2>&1; do
	tries=$((tries + 1))
	if [ $tries -gt 100 ]; then
		echo "vmsupd did not come up; see $demo_dir/vmsupd.log" >&2
		exit 1
	fi
	sleep 0.1
done

echo "== vmsup info"
vmsup info
echo "== vmsup create $vm --start (the bundled guest)"
vmsup create "$vm" --memory 256 --start

echo "== waiting for the guest agent"
tries=0
until vmsup ping "$vm" >/dev/null 2>&1; do
	tries=$((tries + 1))
	if [ $tries -gt 120 ]; then
		echo "the guest agent did not answer within 120 s; see $demo_dir/run/vms/$vm/console.log" >&2
		exit 1
	fi
	sleep 1
done

echo "== vmsup list"
vmsup list
echo "== vmsup health $vm"
vmsup health "$vm"
echo "== vmsup stats $vm"
vmsup stats "$vm"
echo "== vmsup ports $vm"
vmsup ports "$vm"

url=$(vmsup --json ports "$vm" | python3 -c 'import json,sys
ports = json.load(sys.stdin)["ports"]
print(next((p["url"] for p in ports if p.get("web") and p.get("url")), ""))')
if [ -z "$url" ]; then
	echo "no web port found in the guest" >&2
	exit 1
fi
echo "== fetching $url from the host"
curl -fsS "$url"

cat <<EOT

The VM '$vm' is running under vmsupd (socket $sock). Try next:
  $build/src/cli/vmsup --socket $sock exec $vm -- uname -a
  $build/src/cli/vmsup --socket $sock workspace create proj --path \$HOME/src/proj
  $build/src/cli/vmsup --socket $sock stats $vm --json
  gdbus call --session --dest io.github.vmsup.Supervisor1 \\
    --object-path /io/github/vmsup/Supervisor1 --method io.github.vmsup.Supervisor1.List {}
    (D-Bus needs the daemon started without --no-dbus on your session bus)
Stop everything with: $0 --stop
EOT
