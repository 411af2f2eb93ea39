#!/usr/bin/env bash
# A ZooKeeper ensemble on loopback for trying elector by hand (the tests start their own,
# decision 110): builds and runs election-tests' `zookeeper-ensemble` binary, which prints
# the connect string (the value for zookeeper.connect) and runs until Ctrl-C.
#
#   bash scripts/zookeeper-ensemble.sh [MEMBERS]     (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --quiet -p election-tests --bin zookeeper-ensemble -- "$@"
