#!/usr/bin/env bash
# Builds the Lambda artifact as SAM's rust-cargolambda builder does: `cargo lambda build
# --release` run in the functions' CodeUri (./lambda, whose .cargo/config.toml sets the
# artifact's profile), here for the host's x86_64 with the host's linker (AWS's arm64
# standard library is not available offline; the code is the same). Prints the path of the
# built bootstrap. Needs cargo-lambda in .venv.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/lambda"
PATH="$root/.venv/bin:$PATH" cargo lambda build --quiet --release --x86-64 --compiler cargo \
  --bin leadscore-lambda >&2
echo "$root/target/lambda/leadscore-lambda/bootstrap"
