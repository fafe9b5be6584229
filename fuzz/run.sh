#!/usr/bin/env bash
# Coverage-guided fuzzing of natron (cargo-fuzz + libFuzzer, stable Rust).
#
#   fuzz/run.sh [SECONDS]   # default 10 seconds per target
#
# 1. builds every target (installing cargo-fuzz if missing);
# 2. replays each target's committed corpus (fuzz/corpus/<target>);
# 3. fuzzes each target for SECONDS; new inputs go to a scratch directory,
#    so the committed corpus stays as it is (minimise with `cargo fuzz cmin`
#    before adding any);
# 4. checks that the corpus of `conn` catches each seeded mutant of the
#    connection state machine (build.rs: NATRON_MUTANT under --cfg fuzzing).
#
# A failing input is written to fuzz/artifacts/<target>/; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -s none <target> <file>
# RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags to the stable
# compiler; `-s none`: no sanitizer (natron's lib is #![deny(unsafe_code)]).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
export RUSTC_BOOTSTRAP=1
unset NATRON_MUTANT

targets=(http_reader chunked ws_decoder ws_roundtrip ws_upgrade router url multipart conn conn_stream)
mutants=(ws_frame_after_close response_after_close)

phase_start=$SECONDS
phase() {
  local now=$SECONDS
  if [ -n "${phase_name:-}" ]; then
    printf '  (%s: %ds)\n' "$phase_name" $((now - phase_start))
  fi
  phase_name=$1
  phase_start=$now
  printf '\n--- %s\n' "$1"
}

phase "install cargo-fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
cargo fuzz --version

phase "build"
cargo fuzz build -s none

replay() { # replay <target>: every corpus input once
  cargo fuzz run -s none "$1" "fuzz/corpus/$1" -- -runs=0 >"$log" 2>&1
}

log=$(mktemp)
scratch=$(mktemp -d)
trap 'rm -rf "$log" "$scratch"' EXIT

phase "replay the corpus"
for t in "${targets[@]}"; do
  if ! replay "$t"; then
    tail -40 "$log"
    echo "FAIL: $t fails on its committed corpus"
    exit 1
  fi
  printf '  %-13s %s inputs\n' "$t" "$(ls "fuzz/corpus/$t" | wc -l)"
done

phase "fuzz each target for ${seconds}s"
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t" "fuzz/artifacts/$t"
  if ! cargo fuzz run -s none "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    tail -60 "$log"
    echo "FAIL: $t found a failing input (see fuzz/artifacts/$t/)"
    exit 1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  printf '  %-13s %s execs, %s\n' "$t" "${execs:-?}" "${cov:-cov: ?}"
done

phase "mutants (the conn corpus must catch each)"
for m in "${mutants[@]}"; do
  # `cargo fuzz run` builds first: the variable must be set for both.
  if (export NATRON_MUTANT=$m && cargo fuzz build -s none conn && replay conn); then
    echo "FAIL: mutant $m survived the conn corpus"
    exit 1
  fi
  if ! grep -q 'panicked' "$log"; then
    tail -40 "$log"
    echo "FAIL: building or running mutant $m failed without a caught violation"
    exit 1
  fi
  grep -m1 -A1 'panicked' "$log" | tail -1 | sed "s/^/  $m caught: /"
done

phase "done"
echo "fuzz: all targets passed"
