#!/usr/bin/env bash
# Autobahn|Testsuite (fuzzingclient) against examples/conformance.rs /ws,
# with permessage-deflate enabled (--compression). Needs
# ../shared/conformance/autobahn. Fails on any failed case, with strict
# closing behaviour.
#
# Cases 1-10 run whole. Of the 216 permessage-deflate cases (12.*, 13.*),
# which take about 15 minutes together (Autobahn's Python client, 1000
# messages per case up to 128 KiB each), CI runs a subset of 48 (~1 min):
# every group, so every kind of payload (12.1-12.5) and every offer
# (13.1-13.7: window bits 9 and 15, client and server no-context-takeover,
# a list of offers), at payload sizes 16 B (below the server's threshold),
# 256 B and 4 KiB in one frame, and 8 KiB in 256-byte fragments (sizes 1,
# 3, 5 and 11 of each group). The large sizes add no new path: their bound
# is tested in tests/deflate.rs. AUTOBAHN_DEFLATE=full runs all 216.
set -euo pipefail
cd "$(dirname "$0")/.."
AB=../shared/conformance/autobahn
PORT=${AUTOBAHN_PORT:-19301}
TARGET=${CARGO_TARGET_DIR:-target}

exclude=""
if [ "${AUTOBAHN_DEFLATE:-subset}" != full ]; then
  for group in 12.1 12.2 12.3 12.4 12.5 13.1 13.2 13.3 13.4 13.5 13.6 13.7; do
    for size in 2 4 6 7 8 9 10 12 13 14 15 16 17 18; do
      exclude="$exclude $group.$size"
    done
  done
fi

bash "$AB/setup.sh"
cargo build --release --example conformance
"$TARGET/release/examples/conformance" --addr "127.0.0.1:$PORT" --max-message-len 16777216 --compression &
SRV=$!
trap 'kill "$SRV" 2>/dev/null || true' EXIT
out=$(AUTOBAHN_STRICT_CLOSE=1 AUTOBAHN_EXCLUDE="$exclude" AUTOBAHN_TIMEOUT=1800 \
  bash "$AB/run.sh" "ws://127.0.0.1:$PORT/ws" natron) || { echo "$out"; exit 1; }
echo "$out" | tail -1
kill -0 "$SRV" || { echo "conformance server died during the run"; exit 1; }
