#!/usr/bin/env bash
# Autobahn|Testsuite (fuzzingclient) against examples/conformance.rs /ws.
# Needs ../shared/conformance/autobahn. Fails on any failed case, with
# strict closing behaviour; permessage-deflate (12.*, 13.*) is not offered.
set -euo pipefail
cd "$(dirname "$0")/.."
AB=../shared/conformance/autobahn
PORT=${AUTOBAHN_PORT:-19301}

bash "$AB/setup.sh"
cargo build --release --example conformance
./target/release/examples/conformance --addr "127.0.0.1:$PORT" --max-message-len 16777216 &
SRV=$!
trap 'kill "$SRV" 2>/dev/null || true' EXIT
out=$(AUTOBAHN_STRICT_CLOSE=1 AUTOBAHN_EXCLUDE="12.* 13.*" AUTOBAHN_TIMEOUT=900 \
  bash "$AB/run.sh" "ws://127.0.0.1:$PORT/ws" natron) || { echo "$out"; exit 1; }
echo "$out" | tail -1
kill -0 "$SRV" || { echo "conformance server died during the run"; exit 1; }
