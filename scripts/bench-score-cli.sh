#!/usr/bin/env bash
# Benchmark (f) of docs/performance.md: `leadscore score` over 1,000,000 events for
# 100,000 leads with the seed-001 rules; prints wall time, events/s and peak memory.
# Usage: bash scripts/bench-score-cli.sh [EVENTS] [LEADS]
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-1000000}
leads=${2:-100000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
[ -n "${KEEP_EVENTS:-}" ] && trap - EXIT && echo "events in $dir"

python3 - "$events" "$leads" > "$dir/events.jsonl" <<'PY'
import json, random, sys
from datetime import datetime, timedelta, timezone
n, leads = int(sys.argv[1]), int(sys.argv[2])
rnd = random.Random(2026)
start = datetime(2026, 9, 1, tzinfo=timezone.utc)
countries = ["US", "DE", "JP", "PL", "MY", "MX", "BR", "CN", "FR", "SG", ""]
titles = ["CEO", "Purchasing Manager", "Project Manager", "Engineer", "Admin", "Buyer", ""]
products = ["LED Panel", "solar inverter", "LED bulb", "cable", "furniture", "widget"]
messages = ["We need 500 pcs, please quote.", "请告知规格和采购量", "Hello", "What is the MOQ?"]
kinds = [("site.visited", {}), ("page.viewed", {"page": "product"}),
         ("page.viewed", {"page": "pricing"}), ("email.opened", {}), ("email.opened", {}),
         ("email.clicked", {}), ("email.replied", {}), ("form.submitted", {"form": "contact"}),
         ("call.completed", {"minutes": 7}), ("email.unsubscribed", {})]
per_lead = n // leads
out = sys.stdout
for i in range(n):
    lead = i % leads
    k = i // leads
    at = start + timedelta(minutes=k * 1440 + rnd.randrange(1440), seconds=lead % 60)
    e = {"id": f"e{i}", "lead": f"lead{lead}@example.com", "at": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if k == 0:
        e["type"] = "form.submitted"
        e["props"] = {"form": "inquiry"}
        e["attributes"] = {"country": rnd.choice(countries), "title": rnd.choice(titles),
                           "product": rnd.choice(products), "message": rnd.choice(messages)}
    else:
        t, props = rnd.choice(kinds)
        e["type"] = t
        if props:
            e["props"] = props
    out.write(json.dumps(e, ensure_ascii=False))
    out.write("\n")
PY

cargo build --release -q
size=$(du -m "$dir/events.jsonl" | cut -f1)
echo "input: $events events, $leads leads, ${size} MB"
/usr/bin/time -f "%e %M" -o "$dir/time" target/release/leadscore score examples/001-zoho.rules \
  --events "$dir/events.jsonl" --now 2026-11-20T00:00:00Z --format json > "$dir/out.jsonl"
read -r secs kb < "$dir/time"
lines=$(wc -l < "$dir/out.jsonl")
python3 -c "import sys; e,s,kb,l=int(sys.argv[1]),float(sys.argv[2]),int(sys.argv[3]),int(sys.argv[4]); print(f'leads scored: {l}\nwall: {s:.2f} s\nevents/s: {e/s:,.0f}\npeak memory (max RSS): {kb/1024:.0f} MiB')" \
  "$events" "$secs" "$kb" "$lines"
