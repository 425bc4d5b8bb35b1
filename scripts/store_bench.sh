#!/usr/bin/env bash
# Runs the Postgres store benchmark (galaxy-adapters/postgres/examples/store_bench.rs) on
# a throwaway cluster with the server's default durability (fsync on, synchronous
# commit on), started and removed by this script. Arguments go to the benchmark, e.g.
#   scripts/store_bench.sh --scale 0.5 --json target/store_bench.json
# Set STORE_BENCH_URL to run against a Postgres of your own instead (it should have fsync
# on for the figures to mean anything; the benchmark prints the setting).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }

unset DATABASE_URL
if [ -n "${STORE_BENCH_URL:-}" ]; then
    export DATABASE_URL=$STORE_BENCH_URL
else
    export GALAXY_PG_DURABLE=1
    # shellcheck source=scripts/postgres.sh
    . scripts/postgres.sh
    ensure_postgres
fi
say "cargo run --release -p galaxy-postgres --example store_bench -- $*"
cargo run --release -q -p galaxy-postgres --example store_bench -- "$@"
