#!/usr/bin/env bash
# Runs every check and test leadscore has, on a fresh machine: formatting, lints, the
# whole workspace's tests (unit, integration, insta snapshots, property tests, doc tests)
# and the rule test cases shipped with the examples.
set -euo pipefail
cd "$(dirname "$0")/.."

export INSTA_UPDATE=no          # a changed snapshot fails the run; review with cargo insta
export CARGO_TERM_COLOR=never

# Each stage says when it starts (seconds since the run began): CI must stay well under
# an hour, and this shows where the time goes.
started=$(date +%s)
stage() { echo "== [$(( $(date +%s) - started ))s] $*"; }

# The browser tests drive Debian's Chromium headless, directly and through its WebDriver
# (tests/http.rs, tests/website.rs).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "== installing Debian's chromium and chromium-driver for the browser tests"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
    chromium chromium-driver
fi

# axe-core (npm, pinned) checks the console's pages for accessibility in that browser
# (tests/console.rs).
axe_version=4.14.1
if [ "$(node -p "require('./.tools/node_modules/axe-core/package.json').version" 2>/dev/null)" != "$axe_version" ]; then
  echo "== installing axe-core $axe_version from npm"
  npm install --silent --no-audit --no-fund --prefix .tools "axe-core@$axe_version"
fi
export LEADSCORE_AXE_JS="$PWD/.tools/node_modules/axe-core/axe.min.js"

stage "cargo fmt --check"
cargo fmt --all -- --check

stage "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The stores one by one: each adapter builds and lints on its own.
cargo clippy -p leadscore-store --no-default-features --all-targets --quiet -- -D warnings
cargo clippy -p leadscore-store --features sqlite --all-targets --quiet -- -D warnings
cargo clippy -p leadscore-store --features dynamodb --all-targets --quiet -- -D warnings
# The Lambda binary links no parser, no compiler and no SQLite (ARCHITECTURE.md), and the
# runtime no async, IO, HTTP or database crate.
forbid() { # crate, forbidden dependencies...
  local crate=$1; shift
  local linked
  linked=$(cargo tree -p "$crate" -e normal --prefix none | awk '{print $1}' | sort -u)
  for forbidden in "$@"; do
    if grep -qx "$forbidden" <<<"$linked"; then
      echo "$crate links $forbidden" >&2
      exit 1
    fi
  done
}
forbid leadscore-lambda pest pest_derive leadscore-dsl leadscore-compiler rusqlite
forbid leadscore-runtime tokio axum hyper rusqlite aws-sdk-dynamodb leadscore-store
forbid leadscore-dsl tokio rusqlite aws-sdk-dynamodb leadscore-runtime
forbid leadscore-compiler tokio rusqlite aws-sdk-dynamodb leadscore-store

stage "moto: a DynamoDB-compatible server on 127.0.0.1 for the tests"
# The Python tools, from PyPI into .venv: moto (the DynamoDB-compatible server), cfn-lint and
# the SAM CLI (template checks, offline), cargo-lambda (builds the release Lambda artifact and
# emulates the Lambda APIs).
if [ ! -x .venv/bin/cfn-lint ] || [ ! -x .venv/bin/sam ] || [ ! -x .venv/bin/cargo-lambda ] \
   || ! .venv/bin/python -c 'import moto.server' 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet 'moto[server]' cfn-lint aws-sam-cli cargo-lambda
fi
moto_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
.venv/bin/python scripts/moto-server.py "$moto_port" > "${TMPDIR:-/tmp}/leadscore-moto.log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do
  curl -s -o /dev/null "http://127.0.0.1:$moto_port" && break
  sleep 0.5
done
# The DynamoDB tests (the store's contract, the Lambda entry on DynamoDB) run in the
# workspace's tests below and fail, never skip, without this server.
export LEADSCORE_DYNAMODB_ENDPOINT="http://127.0.0.1:$moto_port"

stage "cargo test"
cargo test --workspace --no-fail-fast

stage "leadscore fmt --check: every rules file in its canonical layout"
cargo run --quiet -- fmt --check examples/*.rules examples/peers/*.rules \
  examples/rules-repo/rules/*.rules compiler/tests/data/ok/*.rules

stage "leadscore check examples"
cargo run --quiet -- check examples/*.rules examples/peers/*.rules compiler/tests/data/ok/*.rules

stage "leadscore test: the hand-worked cases of every example"
for rules in examples/*.rules examples/peers/*.rules; do
  cargo run --quiet -- test "$rules" "${rules%.rules}.cases.toml"
done

stage "bench-peers: leadscore, zen-expression and cel-interpreter agree with the floor"
# A workspace of its own (peer engines stay out of the normal build); release, as benched.
cargo fmt --manifest-path bench-peers/Cargo.toml -- --check
cargo clippy --manifest-path bench-peers/Cargo.toml --release --all-targets --quiet -- -D warnings
cargo test --manifest-path bench-peers/Cargo.toml --release --quiet

stage "template.yaml (cfn-lint and sam validate, offline)"
.venv/bin/cfn-lint template.yaml
SAM_CLI_TELEMETRY=0 .venv/bin/sam validate --region us-east-1 -t template.yaml

stage "the release Lambda artifact under cargo-lambda's emulator, on DynamoDB (moto)"
bash scripts/lambda-local.sh
stage "done"
