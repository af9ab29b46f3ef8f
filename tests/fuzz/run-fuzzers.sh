#!/bin/sh
# Builds the libFuzzer harnesses in a clang build dir of their own and runs
# each for a fixed budget. A crash leaves crash-<harness>-* in that build dir:
# copy it into tests/fuzz/corpus-<harness>/ and fix the bug; the replay test
# of every build then keeps it fixed.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${VMSUP_FUZZ_BUILD_DIR:-$top/_build-fuzz}
budget=${VMSUP_FUZZ_SECONDS:-30}

if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" "$top" \
		-Dfuzzing=true \
		-Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fsanitize=fuzzer-no-link \
		-Dman=disabled -Dguest=disabled
fi
harnesses="jsonrpc-request qmp-line qga-reply dbus-variant"
targets=""
for harness in $harnesses; do
	targets="$targets tests/fuzz/fuzz-$harness"
done
# shellcheck disable=SC2086
ninja -C "$build" $targets

status=0
for harness in $harnesses; do
	corpus="$build/fuzz-corpus-$harness"
	mkdir -p "$corpus"
	echo "== fuzz-$harness for ${budget}s"
	"$build/tests/fuzz/fuzz-$harness" \
		-max_total_time="$budget" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$build/crash-$harness-" \
		"$corpus" "$top/tests/fuzz/corpus-$harness" || status=1
done
exit $status
