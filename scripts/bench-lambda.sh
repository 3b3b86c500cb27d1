#!/usr/bin/env bash
# Benchmark of the release Lambda artifact (docs/performance.md, "Lambda"): builds it with
# `cargo lambda build --release`, reports its size, then drives it through the Lambda
# Runtime API (scripts/lambda-bench.py) for init time and POST /events latency, on a
# DynamoDB table shaped by template.yaml in moto's server, and on the in-memory store
# (the function's own cost without a database).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/cargo-lambda ] || ! .venv/bin/python -c 'import moto.server, boto3, yaml' 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet cargo-lambda 'moto[server]'
fi
export PATH="$PWD/.venv/bin:$PATH"

bootstrap=$(bash scripts/lambda-build.sh)
echo "bootstrap: $(stat -c %s "$bootstrap") bytes, $(file -b "$bootstrap" | grep -o 'not stripped\|stripped')"

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
.venv/bin/python scripts/moto-server.py "$port" > "$work/moto.log" 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null; wait $moto 2>/dev/null; rm -rf "$work"' EXIT
endpoint="http://127.0.0.1:$port"
for _ in $(seq 1 60); do curl -s -o /dev/null "$endpoint" && break; sleep 0.5; done

cargo run --quiet --release -- compile examples/001-zoho.rules -o "$work/program.lsb" > /dev/null
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export LEADSCORE_PROGRAM="$work/program.lsb" LEADSCORE_WEBHOOK_SECRET=bench LEADSCORE_READ_TOKEN=bench

echo "== DynamoDB store (moto, single-threaded, on 127.0.0.1)"
.venv/bin/python scripts/table-from-template.py "$endpoint" bench > /dev/null
LEADSCORE_STORE=dynamodb:bench LEADSCORE_DYNAMODB_ENDPOINT="$endpoint" \
  python3 scripts/lambda-bench.py "$bootstrap" --requests "${REQUESTS:-400}"

echo "== in-memory store"
LEADSCORE_STORE=memory python3 scripts/lambda-bench.py "$bootstrap" --requests 2000
