#!/bin/sh
# The test command: installs what is missing, builds from scratch with
# AddressSanitizer + UndefinedBehaviorSanitizer, runs every suite, and fails
# when a test failed or was skipped.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${VMSUP_BUILD_DIR:-_build-sanitize}

./data/scripts/install-deps.sh
rm -rf "$build"
meson setup "$build" -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=true --buildtype=debug \
	-Dguest=enabled -Dman=enabled -Ddebian_image=enabled
ninja -C "$build"

status=0
# sanitizers (exact malloc stacks above all) slow the tests several times over:
# meson's timeouts and the tests' own waits grow by one factor together
multiplier=${VMSUP_TEST_TIMEOUT_MULTIPLIER:-3}
export VMSUP_TEST_TIMEOUT_MULTIPLIER="$multiplier"
meson test -C "$build" --print-errorlogs --num-processes 2 --timeout-multiplier "$multiplier" "$@" ||
	status=$?

# the libFuzzer harnesses, each for a short fixed budget, in a clang build of their own
fuzz_build="${build}-fuzz"
rm -rf "$fuzz_build"
echo "fuzzing (output in $fuzz_build.log)"
if VMSUP_FUZZ_BUILD_DIR="$fuzz_build" VMSUP_FUZZ_SECONDS=${VMSUP_FUZZ_SECONDS:-10} \
	./tests/fuzz/run-fuzzers.sh >"$fuzz_build.log" 2>&1; then
	grep -E '^(==|Done)' "$fuzz_build.log" || true
else
	tail -n 60 "$fuzz_build.log"
	echo "fuzzing found a crash"
	status=1
fi

log="$build/meson-logs/testlog.txt"
passed=$(grep -c '^ok ' "$log" || true)
failed=$(grep -c '^not ok ' "$log" || true)
skipped=$(grep -c '^ok .*# SKIP' "$log" || true)
# a whole test that exited 77 is a skip too
skipped_tests=$(python3 -c 'import json,sys
print(sum(1 for l in open(sys.argv[1]) if json.loads(l).get("result") == "SKIP"))' \
	"$build/meson-logs/testlog.json")
skipped=$((skipped + skipped_tests))
passed=$((passed - skipped))
# a test that timed out, crashed or ended without its plan has no "not ok" line of its own
broken=$(python3 -c 'import json,sys
bad = [t["name"] for t in map(json.loads, open(sys.argv[1]))
       if t.get("result") in ("FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS")]
print(len(bad))
for name in bad: print(name, file=sys.stderr)' \
	"$build/meson-logs/testlog.json" 2>"$build/meson-logs/broken.txt")
if [ "$broken" -ne 0 ]; then
	echo "Tests that failed as a whole (timeout, crash, non-zero exit):"
	sed 's/^/  /' "$build/meson-logs/broken.txt"
	status=1
fi
if [ "$skipped" -ne 0 ]; then
	echo "Skipped tests (a skip is a failure here):"
	grep '^ok .*# SKIP' "$log" || true
	grep -o '"name": "[^"]*", [^}]*"result": "SKIP"' "$build/meson-logs/testlog.json" || true
	status=1
fi
echo "$passed passed, $failed failed, $skipped skipped; $broken whole tests failed"
exit $status
