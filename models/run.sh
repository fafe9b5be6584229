#!/usr/bin/env bash
# Runs every loom model on the real actor core (must pass), then every
# seeded mutant (each must make some model fail). Prints a table and exits
# non-zero on any problem. See models/README.md.
#
#   models/run.sh               # everything
#   models/run.sh clean         # only the clean run
#   models/run.sh lost_wakeup   # only that mutant
#
# Env: LOOM_MAX_PREEMPTIONS (default 3), LOOM_TARGET_ROOT (default target),
# MATRIX=1 (run every model against every mutant instead of stopping at the
# first model that catches it).
# Every configuration shares one target dir ($root/loom) and the same
# RUSTFLAGS ("--cfg loom"); the mutant is chosen by NATRON_MUTANT, which
# build.rs turns into cfg(natron_mutant = "..."). Loom and its dependencies
# are built once; each mutant recompiles only natron's actor core and the
# model binaries.
set -uo pipefail
cd "$(dirname "$0")/.."

export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
export RUST_BACKTRACE=0
export CARGO_TERM_COLOR=never
root="${LOOM_TARGET_ROOT:-target}"
logs="$root/loom-logs"
mkdir -p "$logs"

# Every model, in the order the clean run uses.
models=(one_handler_in_flight events_in_order no_lost_wakeup outbound_order shutdown upgrade_ordering no_stranded_job no_stranded_accept subscribe_close stream_budget)

# Every mutant, with the models to try, designated catcher first; the run
# of a mutant stops at the first model that fails.
mutants=(double_dispatch close_not_last lost_wakeup lost_outbound_wakeup reorder_outbound early_idle early_release
  no_chain_wake searching_leak park_without_recheck stop_by_count turn_and_requeue limit_store_not_cas
  ledger_check_then_act budget_check_before_interest)
declare -A catchers=(
  [double_dispatch]="one_handler_in_flight"
  [close_not_last]="events_in_order"
  [lost_wakeup]="no_lost_wakeup"
  [ledger_check_then_act]="subscribe_close"
  [budget_check_before_interest]="stream_budget"
  [lost_outbound_wakeup]="outbound_order"
  [reorder_outbound]="outbound_order"
  [early_idle]="shutdown"
  [early_release]="upgrade_ordering"
  [no_chain_wake]="no_stranded_job"
  [searching_leak]="no_stranded_job"
  [park_without_recheck]="no_stranded_job"
  [stop_by_count]="shutdown"
  [turn_and_requeue]="one_handler_in_flight"
  [limit_store_not_cas]="no_stranded_accept"
)

only="${1:-}"
problems=0
rows=()
start_all=$SECONDS

row() { rows+=("$(printf '%-22s %-21s %-30s %6ss' "$1" "$2" "$3" "$4")"); printf '%s\n' "${rows[-1]}"; }

export CARGO_TARGET_DIR="$root/loom" RUSTFLAGS="--cfg loom"

# build <label> <mutant>: builds every model with that mutant ("" for none).
build() {
  local label=$1 mutant=$2 t0=$SECONDS log="$logs/$1.build.log"
  local args=()
  for m in "${models[@]}"; do args+=(--test "$m"); done
  if NATRON_MUTANT="$mutant" cargo test --release --no-run "${args[@]}" >"$log" 2>&1; then
    row "(build)" "$label" "ok" $((SECONDS - t0))
    return 0
  fi
  row "(build)" "$label" "BUILD FAILED: $log" $((SECONDS - t0))
  problems=$((problems + 1))
  return 1
}

# run <label> <mutant> <model>: sets $outcome to pass / assert / deadlock
# / error.
run() {
  local label=$1 mutant=$2 model=$3 log="$logs/$1.$3.log"
  NATRON_MUTANT="$mutant" cargo test --release --test "$model" >"$log" 2>&1
  local rc=$?
  if [ $rc -eq 0 ]; then
    outcome=pass
  elif grep -q 'deadlock; threads' "$log"; then
    outcome=deadlock
  elif grep -q "panicked at models/" "$log"; then
    outcome=assert
  else
    outcome=error
  fi
}

printf '%-22s %-21s %-30s %7s\n' MODEL MUTANT RESULT TIME
printf '%-22s %-21s %-30s %7s\n' ----- ------ ------ ----

if [ -z "$only" ] || [ "$only" = clean ]; then
  if build clean ""; then
    for model in "${models[@]}"; do
      t0=$SECONDS
      run clean "" "$model"
      if [ "$outcome" = pass ]; then
        row "$model" "-" "pass" $((SECONDS - t0))
      else
        row "$model" "-" "FAIL ($outcome): $logs/clean.$model.log" $((SECONDS - t0))
        problems=$((problems + 1))
      fi
    done
  fi
fi

for mutant in "${mutants[@]}"; do
  if [ -n "$only" ] && [ "$only" != "$mutant" ]; then continue; fi
  # No separate build: each model builds when first run, and the designated
  # catcher usually ends the search, so the other models are never built.
  caught=
  # The designated catcher first, then every other model.
  tries="${catchers[$mutant]}"
  for model in "${models[@]}"; do
    case " $tries " in *" $model "*) ;; *) tries="$tries $model" ;; esac
  done
  for model in $tries; do
    t0=$SECONDS
    run "$mutant" "$mutant" "$model"
    case "$outcome" in
      assert | deadlock)
        row "$model" "$mutant" "caught ($outcome)" $((SECONDS - t0))
        caught=1
        [ -n "${MATRIX:-}" ] || break
        ;;
      pass)
        row "$model" "$mutant" "missed" $((SECONDS - t0))
        ;;
      *)
        row "$model" "$mutant" "ERROR: $logs/$mutant.$model.log" $((SECONDS - t0))
        problems=$((problems + 1))
        ;;
    esac
  done
  if [ -z "$caught" ]; then
    row "(all)" "$mutant" "NOT CAUGHT by any model" 0
    problems=$((problems + 1))
  fi
done

echo
echo "LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS; total $((SECONDS - start_all))s; logs in $logs/"
if [ $problems -ne 0 ]; then
  echo "FAILED: $problems problem(s)"
  exit 1
fi
echo "OK: every model passes and every mutant is caught"
