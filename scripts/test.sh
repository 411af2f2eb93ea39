#!/usr/bin/env bash
# The whole elector test suite, real servers included: install what it needs, then run
# every test of the workspace. README.md's second command, and what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

# Each test starts its own servers on free loopback ports; nextest runs every test in its
# own process (so a crashed test cannot leave a server behind in another) and enforces
# the timeouts of .config/nextest.toml.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --profile "${NEXTEST_PROFILE:-default}" "$@"
  # nextest does not run doctests.
  cargo test --workspace --doc
else
  echo "test.sh: cargo-nextest not found, falling back to cargo test" >&2
  cargo test --workspace "$@"
fi
