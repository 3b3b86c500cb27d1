#!/usr/bin/env bash
# The release Lambda artifact, as SAM builds it and AWS runs it, on this machine:
#   1. `cargo lambda build --release` of leadscore-lambda run in lambda/, as `sam build`
#      runs it (scripts/lambda-build.sh), for the host's x86_64;
#   2. a table shaped by template.yaml on the DynamoDB-compatible server named by
#      LEADSCORE_DYNAMODB_ENDPOINT (scripts/test.sh starts one);
#   3. the built `bootstrap` attached to cargo-lambda's emulator of the Lambda APIs
#      (`cargo lambda watch --only-lambda-apis`, on 127.0.0.1), answering Function URL
#      requests (curl: health, a signed POST /events, a refused unsigned one, a read with
#      and without the token) and an HTTP API v2 invocation (`cargo lambda invoke`);
#   4. the same bootstrap in sweep mode (LEADSCORE_MODE=sweep) invoked with an EventBridge
#      Scheduler event: the lead that became inactive a moment ago is re-graded, and the
#      API function then shows the transition with cause "time";
#   5. a tracking beacon and a form carrying its visitor id: the page view joins the lead;
#   6. the same bootstrap in notify mode (LEADSCORE_MODE=notify) invoked with a DynamoDB
#      stream event naming the outbox item the A lead made: it is delivered, signed, to a
#      receiver on loopback, and listed as delivered.
# cargo-lambda comes from PyPI into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${LEADSCORE_DYNAMODB_ENDPOINT:?set LEADSCORE_DYNAMODB_ENDPOINT to a DynamoDB-compatible server (scripts/test.sh starts moto)}"
if [ ! -x .venv/bin/cargo-lambda ] || ! .venv/bin/python -c 'import boto3, yaml' 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet cargo-lambda 'moto[server]'
fi
export PATH="$PWD/.venv/bin:$PATH"

echo "-- cargo lambda build --release in lambda/, as sam build does (x86_64)"
bootstrap=$(bash scripts/lambda-build.sh)
echo "bootstrap: $(stat -c %s "$bootstrap") bytes ($(file -b "$bootstrap" | grep -o 'stripped\|not stripped'))"

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAILED: $*"; for f in "$work"/*.log; do echo "== $f"; cat "$f"; done; exit 1; }

table="lambda-local-$$-$(date +%s)"
.venv/bin/python scripts/table-from-template.py "$LEADSCORE_DYNAMODB_ENDPOINT" "$table"
cargo run --quiet -- compile tests/data/lambda/emulator.rules -o "$work/program.lsb"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cargo lambda watch --only-lambda-apis -A 127.0.0.1 -P "$port" > "$work/watch.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 60); do
  grep -q "AWS_LAMBDA_RUNTIME_API" "$work/watch.log" && break
  sleep 0.5
done
api=$(grep -o 'AWS_LAMBDA_RUNTIME_API=[^ ]*' "$work/watch.log" | head -1 | cut -d= -f2)
fname=$(grep -o 'AWS_LAMBDA_FUNCTION_NAME=[^ ]*' "$work/watch.log" | head -1 | cut -d= -f2)
[ -n "$api" ] && [ -n "$fname" ] || fail "the emulator did not say where its runtime API is"

secret=local-secret token=local-token
# A notification receiver on loopback: records each request's body and headers.
rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$rport" "$work/received.jsonl" > "$work/receiver.log" 2>&1 <<'PY' &
import http.server, json, sys
port, out = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        with open(out, "a") as f:
            f.write(json.dumps({"path": self.path, "headers": dict(self.headers),
                                "body": body.decode()}) + "\n")
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
pids+=($!)
printf '[notify]\nallow_private = true\n' > "$work/leadscore.toml"
secrets='{"HOOK_URL": "http://127.0.0.1:'"$rport"'/hook", "HOOK_SECRET": "hook-secret"}'
# Starts the built bootstrap against the emulator; $1 names the mode (api or sweep).
start_function() {
  env AWS_LAMBDA_RUNTIME_API="$api" AWS_LAMBDA_FUNCTION_NAME="$fname" \
    AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1024 \
    AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
    LEADSCORE_PROGRAM="$work/program.lsb" LEADSCORE_STORE="dynamodb:$table" \
    LEADSCORE_WEBHOOK_SECRET="$secret" LEADSCORE_READ_TOKEN="$token" \
    LEADSCORE_CONFIG="$work/leadscore.toml" LEADSCORE_SECRETS="$secrets" \
    LEADSCORE_MODE="$1" "$bootstrap" > "$work/function-$1.log" 2>&1 &
  function=$!
  pids+=("$function")
}
stop_function() { kill "$function"; wait "$function" 2>/dev/null || true; }

url="http://127.0.0.1:$port/lambda-url/$fname"
start_function api
curl -sf -m 30 "$url/healthz" > "$work/health.json" || fail "no answer from the function"
grep -q '"status":"ok"' "$work/health.json" || fail "health: $(cat "$work/health.json")"
echo "Function URL GET /healthz: $(cat "$work/health.json")"

# A signed event, dated 58 s ago: inactive for 1m begins 2 s from now.
at=$(date -u -d '58 seconds ago' +%Y-%m-%dT%H:%M:%SZ)
body='{"id":"f1","lead":"sweep@lambda.test","type":"form.submitted","at":"'"$at"'","props":{"form":"inquiry"}}'
ts=$(date +%s)
sig=$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$secret" -hex | sed 's/^.* //')
post_event() {
  curl -s -o "$work/post.json" -w '%{http_code}' "$url/events" -H 'content-type: application/json' "$@" -d "$body"
}
code=$(post_event -H "x-leadscore-timestamp: $ts" -H "x-leadscore-signature: v1=0000$sig")
[ "$code" = 401 ] || fail "a forged signature got $code"
code=$(post_event -H "x-leadscore-timestamp: $ts" -H "x-leadscore-signature: v1=$sig")
[ "$code" = 200 ] || fail "signed POST /events got $code: $(cat "$work/post.json")"
grep -q '"grade":"A"' "$work/post.json" || fail "scored: $(cat "$work/post.json")"
echo "Function URL POST /events (signed): $(cat "$work/post.json")"
# Lambda (or the client) retrying the same request: answered, nothing counted twice.
cp "$work/post.json" "$work/first.json"
code=$(post_event -H "x-leadscore-timestamp: $ts" -H "x-leadscore-signature: v1=$sig")
[ "$code" = 200 ] || fail "the retried POST /events got $code: $(cat "$work/post.json")"
python3 - "$work/first.json" "$work/post.json" <<'PY' || fail "the retry was counted"
import json, sys
first, again = (json.load(open(p)) for p in sys.argv[1:])
assert first["accepted"] == 1 and again["accepted"] == 0, again
assert again["duplicates"] == ["f1"], again
print("the same request retried: accepted 0, duplicates", again["duplicates"])
PY

code=$(curl -s -o /dev/null -w '%{http_code}' "$url/leads/sweep@lambda.test")
[ "$code" = 401 ] || fail "a read without the token got $code"

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
cargo lambda invoke "$fname" -A 127.0.0.1 -P "$port" --data-file "$work/event.json" > "$work/answer.json"
python3 - "$work/answer.json" <<'PY' || fail "HTTP API v2 invocation"
import json, sys
a = json.load(open(sys.argv[1]))
assert a["statusCode"] == 200, a
lead = json.loads(a["body"])["leads"][0]
assert lead["lead"] == "local@lambda.test" and lead["scores"]["engagement"] == 20, lead
print("invoke (HTTP API v2) POST /forms/inquiry:", lead["lead"], lead["score"], lead["grade"])
PY
# The A lead's notification waits in the outbox (the stream consumer sends it).
curl -sf -m 30 -H "authorization: Bearer $token" "$url/notifications?status=pending" > "$work/pending.json" \
  || fail "GET /notifications"
stop_function

start_function notify
python3 - "$work/pending.json" "$work/stream.json" <<'PY' || fail "a pending notification"
import json, sys
notes = [n for n in json.load(open(sys.argv[1]))["notifications"] if n["lead"] == "sweep@lambda.test"]
assert len(notes) == 1 and notes[0]["channel"] == "hook", notes
event = json.load(open("tests/data/lambda/dynamodb_stream.json"))
event["Records"] = event["Records"][:1]
keys = event["Records"][0]["dynamodb"]["Keys"]
keys["PK"]["S"] = "LEAD#" + notes[0]["lead"]
keys["SK"]["S"] = "NOTE#" + notes[0]["id"]
json.dump(event, open(sys.argv[2], "w"))
PY
cargo lambda invoke "$fname" -A 127.0.0.1 -P "$port" --data-file "$work/stream.json" > "$work/notified.json"
grep -q '"delivered":1' "$work/notified.json" || fail "notify answered $(cat "$work/notified.json")"
python3 - "$work/received.jsonl" <<'PY' || fail "the delivered notification"
import hashlib, hmac, json, sys
got = [json.loads(l) for l in open(sys.argv[1])]
assert len(got) == 1, got
r = got[0]
h = {k.lower(): v for k, v in r["headers"].items()}
body = json.loads(r["body"])
assert r["path"] == "/hook" and body["transition"]["to"] == "A" and h["idempotency-key"] == body["id"], r
# v2: timestamp, method, path and query, body
mac = hmac.new(b"hook-secret", (h["x-leadscore-timestamp"] + ".POST." + r["path"] + "." + r["body"]).encode(), hashlib.sha256)
assert h["x-leadscore-signature"] == "v2=" + mac.hexdigest(), h
print("invoke (DynamoDB stream) notify: delivered", body["lead"], body["rule"]["text"])
PY
stop_function

# The scheduled sweep: same binary, sweep mode, once the lead is due.
start_function sweep
sleep 3
python3 - > "$work/schedule.json" <<'PY'
import json
print(json.dumps({"version": "0", "id": "e0ad3b3f-0000-0000-0000-000000000000",
  "detail-type": "Scheduled Event", "source": "aws.scheduler", "account": "123456789012",
  "time": "2026-11-23T00:00:00Z", "region": "us-east-1",
  "resources": ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/leadscore-sweep"],
  "detail": "{}"}))
PY
cargo lambda invoke "$fname" -A 127.0.0.1 -P "$port" --data-file "$work/schedule.json" > "$work/swept.json"
grep -q '"swept":1' "$work/swept.json" || fail "sweep answered $(cat "$work/swept.json")"
echo "invoke (EventBridge schedule) sweep: $(cat "$work/swept.json")"
stop_function

start_function api
curl -sf -m 30 -H "authorization: Bearer $token" "$url/leads/sweep@lambda.test" > "$work/lead.json" \
  || fail "GET /leads with the token"
python3 - "$work/lead.json" <<'PY' || fail "the swept lead"
import json, sys
lead = json.load(open(sys.argv[1]))
assert lead["grade"] == "B" and lead["scores"]["engagement"] == 5, lead
last = lead["transitions"][-1]
assert last["cause"] == "time" and last["from"] == "A" and last["to"] == "B", last
print("Function URL GET /leads (after the sweep):", lead["grade"], last)
PY
# The tracking beacon, then a form carrying its visitor id: the page view joins the lead.
vid=lambda-visitor-000001
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/track" -H 'content-type: text/plain' \
  -H 'user-agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36' \
  -d '{"v":"'"$vid"'","events":[{"type":"page.viewed","props":{"path":"/pricing"}}]}')
[ "$code" = 204 ] || fail "POST /track got $code"
curl -sf -m 30 "$url/forms/inquiry" -d "email=visitor%40lambda.test&_visitor=$vid" > /dev/null \
  || fail "a form with the visitor id"
curl -sf -m 30 -H "authorization: Bearer $token" "$url/leads/visitor@lambda.test" > "$work/visitor.json" \
  || fail "the stitched lead"
python3 - "$work/visitor.json" <<'PY' || fail "the stitched lead"
import json, sys
lead = json.load(open(sys.argv[1]))
assert lead["events"] == 2 and len(lead["transitions"]) == 1, lead
print("Function URL POST /track, then a form with its visitor id:", lead["lead"], lead["events"], "events")
PY
curl -sf -m 30 -H "authorization: Bearer $token" "$url/notifications?status=delivered" \
  | grep -q '"channel":"hook"' || fail "the notification is not listed as delivered"
echo "release bootstrap under cargo lambda (Function URL, invoke, notify, sweep, beacon) on DynamoDB: ok"
