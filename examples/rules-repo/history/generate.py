"""Writes the sample history this example backtests against: 400 leads of a quarter
(events.jsonl) and what became of them (outcomes.csv). Deterministic (fixed seed), so the
files in the repository are what this script writes: python3 history/generate.py"""
import csv
import json
import random
from datetime import datetime, timedelta, timezone

rng = random.Random(7)
start = datetime(2026, 7, 1, tzinfo=timezone.utc)
countries = ["US", "DE", "JP", "PL", "MY", "MX", "BR", "IN", "GB", "FR"]
titles = ["CEO", "Purchasing Manager", "Project Engineer", "Sales Assistant", "Buyer", "Director"]
products = ["LED Panel", "Solar Inverter", "LED Bulb", "Cable", "Furniture", ""]

def at(days):
    return (start + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

events, outcomes = [], []
for i in range(400):
    lead = f"buyer{i:03d}@example.com"
    country, title, product = rng.choice(countries), rng.choice(titles), rng.choice(products)
    day = rng.uniform(0, 60)
    message = rng.choice(["", "Please quote 500 pcs", "What is your MOQ?", "Send a catalogue"])
    attributes = {"country": country, "title": title}
    if product:
        attributes["product"] = product
    if message:
        attributes["message"] = message
    form = rng.choice(["inquiry", "contact"])
    events.append({"id": f"f{i}", "lead": lead, "type": "form.submitted", "at": at(day),
                   "attributes": attributes, "props": {"form": form}})
    interest = rng.random()
    for k in range(int(interest * 6)):
        kind = rng.choice(["site.visited", "email.opened", "page.viewed", "email.clicked"])
        e = {"id": f"e{i}-{k}", "lead": lead, "type": kind, "at": at(day + 0.5 + k)}
        if kind == "page.viewed":
            e["props"] = {"page": rng.choice(["pricing", "product", "blog"])}
        events.append(e)
    # Who buys: serious markets, decision makers, flagship products and interest all help.
    p = 0.04 + 0.15 * (country in ("US", "DE", "JP")) + 0.12 * (title in ("CEO", "Director", "Purchasing Manager")) \
        + 0.10 * (product in ("LED Panel", "Solar Inverter")) + 0.25 * interest
    r = rng.random()
    if r < p:
        outcomes.append((lead, "won", at(day + 30)))
    elif r < p + 0.3:
        outcomes.append((lead, "lost", at(day + 30)))
    elif product == "Furniture" and r < p + 0.5:
        outcomes.append((lead, "disqualified", at(day + 10)))

events.sort(key=lambda e: e["at"])
with open("history/events.jsonl", "w") as f:
    for e in events:
        f.write(json.dumps(e, ensure_ascii=False) + "\n")
with open("history/outcomes.csv", "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["lead", "outcome", "at"])
    w.writerows(outcomes)
