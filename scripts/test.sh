#!/usr/bin/env bash
# Runs every check and test leadscore has, on a fresh machine: formatting, lints, the
# whole workspace's tests (unit, integration, insta snapshots, property tests, doc tests)
# and the rule test cases shipped with the examples.
set -euo pipefail
cd "$(dirname "$0")/.."

export INSTA_UPDATE=no          # a changed snapshot fails the run; review with cargo insta
export CARGO_TERM_COLOR=never

# The browser test drives Debian's Chromium headless (tests/http.rs).
if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing Debian's chromium for the browser test"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends chromium
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The runtime on its own, with every feature (the Lambda binary) and with none (bytecode only).
cargo clippy -p leadscore-runtime --all-features --all-targets --quiet -- -D warnings
cargo clippy -p leadscore-runtime --no-default-features --quiet -- -D warnings
cargo build -p leadscore-runtime --features lambda --bin leadscore-lambda --quiet

echo "== cargo test"
cargo test --workspace --no-fail-fast

echo "== leadscore check examples"
cargo run --quiet -- check examples/*.rules tests/data/ok/*.rules

echo "== leadscore test: the hand-worked cases of every example"
for rules in examples/*.rules; do
  cargo run --quiet -- test "$rules" "${rules%.rules}.cases.toml"
done

echo "== bench-peers: leadscore, zen-expression and cel-interpreter agree with the floor"
# A workspace of its own (peer engines stay out of the normal build); release, as benched.
cargo fmt --manifest-path bench-peers/Cargo.toml -- --check
cargo clippy --manifest-path bench-peers/Cargo.toml --release --all-targets --quiet -- -D warnings
cargo test --manifest-path bench-peers/Cargo.toml --release --quiet

echo "== the Lambda entry under cargo-lambda's local emulator (watch + invoke)"
bash scripts/lambda-local.sh
