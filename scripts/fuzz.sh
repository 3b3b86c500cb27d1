#!/usr/bin/env bash
# Runs the fuzz targets named (default: all) under libFuzzer (cargo-fuzz) for SECONDS each
# (default 600), two at a time:  bash scripts/fuzz.sh [SECONDS [TARGET...]]
# and prints each target's runs, coverage and outcome. A crash leaves its
# input in fuzz/artifacts/TARGET/; minimise it (`cargo fuzz tmin`), fix the bug, and
# commit the input under fuzz/crashers/TARGET/ so every test run replays it.
# cargo-fuzz needs nightly features: RUSTC_BOOTSTRAP lets the one stable toolchain build
# them. docs/testing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
log=${FUZZ_LOG:-$(mktemp -d)}
targets=(rules bytecode event form beacon adapters)
if (($# > 1)); then targets=("${@:2}"); fi
run() {
  # The seeds are read from fuzz/corpus/TARGET; what libFuzzer finds goes to a scratch
  # corpus, so the committed one stays the seeds.
  local t=$1 scratch="$log/corpus-$1"
  mkdir -p "$scratch"
  cargo fuzz run -O "$t" "$scratch" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=10 > "$log/$t.log" 2>&1
}
status=0
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  pids=()
  for t in "${targets[@]:i:2}"; do run "$t" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || status=1; done
done
for t in "${targets[@]}"; do
  done_line=$(grep -E "^Done [0-9]+ runs" "$log/$t.log" | tail -1 || true)
  cov=$(grep -oE "cov: [0-9]+ ft: [0-9]+" "$log/$t.log" | tail -1 || true)
  if grep -q "SUMMARY\|panicked\|deadly signal" "$log/$t.log"; then
    echo "$t: CRASH — see $log/$t.log and fuzz/artifacts/$t/"
  else
    echo "$t: ${done_line:-no summary} ($cov)"
  fi
done
exit $status
