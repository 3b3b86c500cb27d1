"""Benchmark of the release Lambda artifact (`bootstrap`), driven through the Lambda Runtime
API the way AWS drives it: this script serves that API on 127.0.0.1 (next invocation,
response, error), hands the binary Function URL requests, and times

  * init: process start to the binary's first `GET /runtime/invocation/next` (what Lambda
    bills as the init phase), over several cold starts;
  * POST /events: from handing an invocation out to receiving its response (the function's
    own time, DynamoDB round trips included), for one event a request and for batches;
    events/s over the whole run.

The store and secrets come from the environment the caller sets (LEADSCORE_STORE,
LEADSCORE_DYNAMODB_ENDPOINT, LEADSCORE_PROGRAM, LEADSCORE_WEBHOOK_SECRET, ...).
Usage: lambda-bench.py BOOTSTRAP [--cold-starts N] [--requests N] [--leads N]"""
import argparse
import hashlib
import hmac
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


class RuntimeApi:
    """The Lambda Runtime API, one invocation at a time."""

    def __init__(self):
        self.pending = queue.Queue()
        self.first_next = threading.Event()
        self.first_next_at = None
        self.handed_out = {}
        self.answers = {}
        self.answered = threading.Condition()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != PREFIX + "/invocation/next":
                    return self.reply(404, b"{}")
                if not api.first_next.is_set():
                    api.first_next_at = time.perf_counter()
                    api.first_next.set()
                rid, body = api.pending.get()
                api.handed_out[rid] = time.perf_counter()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", rid)
                self.send_header(
                    "Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30_000)
                )
                self.send_header(
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:leadscore",
                )
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                parts = self.path[len(PREFIX):].split("/")  # ['', 'invocation', id, kind]
                if len(parts) == 4 and parts[1] == "invocation":
                    with api.answered:
                        api.answers[parts[2]] = (time.perf_counter(), parts[3], data)
                        api.answered.notify_all()
                    return self.reply(202, b"{}")
                print(f"runtime reported {self.path}: {data.decode(errors='replace')}", file=sys.stderr)
                self.reply(202, b"{}")

            def reply(self, code, body):
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a killed function drops its pending `next` request

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def invoke(self, event):
        """Hands `event` to the function; returns (seconds the function took, its answer)."""
        rid = str(uuid.uuid4())
        self.pending.put((rid, json.dumps(event).encode()))
        with self.answered:
            self.answered.wait_for(lambda: rid in self.answers, timeout=60)
            if rid not in self.answers:
                raise SystemExit(f"no answer to invocation {rid} within 60 s")
            at, kind, data = self.answers.pop(rid)
        if kind != "response":
            raise SystemExit(f"invocation failed: {data.decode(errors='replace')}")
        return at - self.handed_out.pop(rid), json.loads(data)

    def close(self):
        self.server.shutdown()


def start(bootstrap, api):
    env = dict(os.environ)
    env.update(
        AWS_LAMBDA_RUNTIME_API=api.address,
        AWS_LAMBDA_FUNCTION_NAME="leadscore",
        AWS_LAMBDA_FUNCTION_VERSION="1",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024",
        LEADSCORE_LOG=env.get("LEADSCORE_LOG", "warn"),
    )
    return subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL)


def function_url_post(path, body, secret):
    ts = str(int(time.time()))
    sig = hmac.new(secret.encode(), f"{ts}.{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "x-leadscore-timestamp": ts,
            "x-leadscore-signature": f"v1={sig}",
            "host": "bench.lambda-url.us-east-1.on.aws",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "bench.lambda-url.us-east-1.on.aws",
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.7",
                "userAgent": "lambda-bench",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": int(time.time() * 1000),
        },
        "body": body,
        "isBase64Encoded": False,
    }


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("--cold-starts", type=int, default=20)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--leads", type=int, default=100)
    args = ap.parse_args()
    secret = os.environ["LEADSCORE_WEBHOOK_SECRET"]

    inits = []
    for _ in range(args.cold_starts):
        api = RuntimeApi()
        spawned = time.perf_counter()
        proc = start(args.bootstrap, api)
        if not api.first_next.wait(30):
            proc.kill()
            raise SystemExit("the function never asked for an invocation")
        inits.append((api.first_next_at - spawned) * 1000)
        proc.kill()
        proc.wait()
        api.close()
    print(
        f"init (process start to first invocation request), {len(inits)} cold starts: "
        f"median {statistics.median(inits):.1f} ms, min {min(inits):.1f}, max {max(inits):.1f}"
    )

    api = RuntimeApi()
    proc = start(args.bootstrap, api)
    seq = 0
    try:
        for batch in (1, 10, 100):
            requests = max(1, args.requests // batch)
            took = []
            began = time.perf_counter()
            for r in range(requests):
                now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                events = []
                for _ in range(batch):
                    seq += 1
                    events.append({
                        "id": f"b{seq}",
                        "lead": f"lead{(seq if batch == 1 else r) % args.leads}@bench.test",
                        "type": "email.opened" if seq % 3 else "page.viewed",
                        "at": now,
                        "props": {"page": "pricing"},
                    })
                seconds, answer = api.invoke(
                    function_url_post("/events", json.dumps(events), secret)
                )
                body = json.loads(answer["body"])
                if answer["statusCode"] != 200 or body.get("accepted") != batch:
                    raise SystemExit(f"unexpected answer: {answer}")
                took.append(seconds * 1000)
            wall = time.perf_counter() - began
            print(
                f"POST /events, {batch:>3} event(s) a request, {requests} requests: "
                f"p50 {percentile(took, 50):.2f} ms, p99 {percentile(took, 99):.2f} ms, "
                f"{requests * batch / wall:.0f} events/s"
            )
    finally:
        proc.kill()
        proc.wait()
        api.close()


main()
