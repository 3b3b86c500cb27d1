#!/usr/bin/env bash
# The Lambda entry under cargo-lambda's local emulator of the Lambda control plane:
# `cargo lambda watch` runs leadscore-lambda, then a Function URL request (curl) and an
# invocation with an HTTP API v2 event (`cargo lambda invoke`) must be answered by it.
# cargo-lambda comes from PyPI into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/cargo-lambda ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet cargo-lambda
fi
export PATH="$PWD/.venv/bin:$PATH"

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cargo run --quiet -- compile examples/001-zoho.rules -o "$work/program.lsb"

LEADSCORE_PROGRAM="$work/program.lsb" LEADSCORE_STORE="sqlite:$work/lambda.db" \
LEADSCORE_WEBHOOK_SECRET=local-secret LEADSCORE_READ_TOKEN=local-token \
  cargo lambda watch --quiet --ignore-changes -A 127.0.0.1 -P "$port" \
    -p leadscore-runtime --features lambda --bin leadscore-lambda > "$work/watch.log" 2>&1 &
watch=$!
trap 'kill $watch 2>/dev/null; wait $watch 2>/dev/null; rm -rf "$work"' EXIT

url="http://127.0.0.1:$port/lambda-url/leadscore-lambda"
for _ in $(seq 1 240); do
  if curl -sf "$url/healthz" > "$work/health.json" 2>/dev/null; then break; fi
  sleep 1
done
grep -q '"status":"ok"' "$work/health.json" || { echo "no answer from the function"; cat "$work/watch.log"; exit 1; }
echo "Function URL GET /healthz: $(cat "$work/health.json")"

# A read without a token is refused by the function itself.
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/leads/nobody@example.com")
[ "$code" = 401 ] || { echo "expected 401 without a token, got $code"; exit 1; }

python3 - "$work/event.json" <<'PY'
import json, sys
e = json.load(open("tests/data/lambda/http_api_v2_request.json"))
e["rawPath"] = e["requestContext"]["http"]["path"] = "/forms/inquiry"
e["rawQueryString"] = ""
e.pop("queryStringParameters", None); e.pop("pathParameters", None)
e["requestContext"]["http"]["method"] = "POST"
e["requestContext"]["http"]["sourceIp"] = "198.51.100.7"
e["headers"] = {"content-type": "application/x-www-form-urlencoded"}
e["body"] = "email=local%40lambda.test&country=DE&title=CEO"
e["isBase64Encoded"] = False
json.dump(e, open(sys.argv[1], "w"))
PY
cargo lambda invoke leadscore-lambda -A 127.0.0.1 -P "$port" --data-file "$work/event.json" > "$work/answer.json"
python3 - "$work/answer.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
assert a["statusCode"] == 200, a
body = json.loads(a["body"])
lead = body["leads"][0]
assert lead["lead"] == "local@lambda.test" and lead["scores"]["engagement"] == 20, body
print("invoke POST /forms/inquiry:", lead["lead"], lead["score"], lead["grade"])
PY
echo "cargo lambda watch + invoke: ok"
