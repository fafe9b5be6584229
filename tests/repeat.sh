#!/usr/bin/env bash
# Runs the test suite (what `cargo test --release --all-features` runs, doctests aside)
# N times and reports every failing test with the run it failed in.
#
#   tests/repeat.sh 30            # 30 runs
#   HOG=2 tests/repeat.sh 10      # 10 runs with 2 busy-looping CPU hogs
#   tests/repeat.sh 10 -- --test-threads=1   # extra args for each binary
#
# It builds once, copies the test binaries aside and runs the copies, so
# editing or building the crate meanwhile does not change what is tested.
# Exit status: 0 when every run of every binary passed, 1 otherwise.
# Logs of failing runs stay in $REPEAT_DIR (default target/repeat).
set -uo pipefail
cd "$(dirname "$0")/.."

n="${1:-10}"
shift || true
[ "${1:-}" = "--" ] && shift
extra=("$@")
dir="${REPEAT_DIR:-target/repeat}"
mkdir -p "$(dirname "$dir")"
# Two runs sharing a directory would delete each other's binaries.
exec 9>"$dir.lock"
flock -n 9 || { echo "repeat: another run is using $dir (set REPEAT_DIR)" >&2; exit 2; }
rm -rf "$dir" && mkdir -p "$dir/bin" "$dir/logs"

echo "repeat: building" >&2
cargo test --release --all-features --no-run --message-format=json 2>"$dir/build.log" |
  python3 -c '
import json, sys
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        print(m["target"]["name"], m["executable"])
' >"$dir/targets" || { cat "$dir/build.log" >&2; exit 1; }
[ -s "$dir/targets" ] || { echo "repeat: no test binaries built" >&2; cat "$dir/build.log" >&2; exit 1; }
while read -r name exe; do cp "$exe" "$dir/bin/$name"; done <"$dir/targets"

hogs=()
if [ "${HOG:-0}" -gt 0 ]; then
  for _ in $(seq "$HOG"); do
    (end=$((SECONDS + 7200)); while [ $SECONDS -lt $end ]; do :; done) &
    hogs+=($!)
  done
  echo "repeat: ${#hogs[@]} CPU hogs running (pids ${hogs[*]})" >&2
fi
cleanup() { for p in "${hogs[@]}"; do kill "$p" 2>/dev/null; done; }
trap cleanup EXIT

failed_runs=0
declare -A fails=()
for run in $(seq "$n"); do
  start=$SECONDS
  bad=()
  while read -r name _; do
    log="$dir/logs/run$run-$name.log"
    if ! timeout 600 "$dir/bin/$name" "${extra[@]}" >"$log" 2>&1; then
      bad+=("$name")
      tests=$(grep -E '^test .* FAILED$' "$log" | sed -E 's/^test (.*) \.\.\. FAILED$/\1/')
      [ -z "$tests" ] && tests="(binary exited $(tail -n 1 "$log" | head -c 120))"
      while read -r t; do
        key="$name::$t"
        fails[$key]="${fails[$key]:-} $run"
      done <<<"$tests"
    else
      rm -f "$log"
    fi
  done <"$dir/targets"
  if [ ${#bad[@]} -gt 0 ]; then
    failed_runs=$((failed_runs + 1))
    echo "run $run/$n: FAILED in ${bad[*]} ($((SECONDS - start)) s)"
  else
    echo "run $run/$n: ok ($((SECONDS - start)) s)"
  fi
done

echo
if [ "$failed_runs" -eq 0 ]; then
  echo "repeat: all $n runs clean"
  exit 0
fi
echo "repeat: $failed_runs of $n runs failed; failing tests (runs):"
for k in "${!fails[@]}"; do echo "  $k:${fails[$k]}"; done | sort
echo "logs: $dir/logs"
exit 1
