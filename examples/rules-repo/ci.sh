#!/usr/bin/env bash
# This repository's CI: run on every change to the rules (see README.md).
#   0. every rules file is in `leadscore fmt`'s layout (a diff otherwise);
#   1. every rules file checks clean, and reads nothing last quarter's events never carry;
#   2. the hand-worked cases pass, and the snapshots of the program's listing and of every
#      case's full result match (a reviewer reads their diff; `leadscore test ... --update`
#      rewrites them in the branch that changes the rules);
#   3. the backtest of the rules in use against the proposal over last quarter's history
#      (text in the log, backtest.html as the page to attach to the review).
# LEADSCORE: the leadscore binary (default: leadscore on PATH).
# BASE_RULES: the rules in use (default: rules/scoring.rules at $BASE_REF, origin/main).
set -euo pipefail
cd "$(dirname "$0")"
leadscore=${LEADSCORE:-leadscore}

echo "== layout"
"$leadscore" fmt --check rules/*.rules

echo "== check"
"$leadscore" check rules/*.rules --events history/events.jsonl

echo "== cases and snapshots"
"$leadscore" test rules/scoring.rules cases/*.cases.toml --snapshots snapshots

echo "== backtest: the rules in use against this change, last quarter"
base=${BASE_RULES:-}
if [ -z "$base" ]; then
  base=$(mktemp --suffix=.rules)
  git show "${BASE_REF:-origin/main}:./rules/scoring.rules" > "$base"
fi
"$leadscore" backtest "$base" rules/scoring.rules \
  --events history/events.jsonl --outcomes history/outcomes.csv \
  --as-of 2026-09-01T00:00:00Z --html "${REPORT:-backtest.html}"
