#!/usr/bin/env bash
# Runs the Postgres store benchmark (galaxy-adapters/postgres/examples/store_bench.rs) on
# a throwaway cluster with the server's default durability (fsync on, synchronous
# commit on), started and removed by this script. Arguments go to the benchmark, e.g.
#   scripts/store_bench.sh --scale 0.5 --json target/store_bench.json
# `--graphile` (taken by this script) also runs a peer job queue, graphile-worker
# (scripts/peer-queue, Node.js and npm needed), on the same cluster right after, with the
# same `--scale` and `--rounds`.
# Set STORE_BENCH_URL to run against a Postgres of your own instead (it should have fsync
# on for the figures to mean anything; the benchmark prints the setting).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }

graphile=0 scale=1 rounds=5 args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --graphile) graphile=1 ;;
        --scale) scale=$2; args+=("$1" "$2"); shift ;;
        --rounds) rounds=$2; args+=("$1" "$2"); shift ;;
        *) args+=("$1") ;;
    esac
    shift
done

unset DATABASE_URL
if [ -n "${STORE_BENCH_URL:-}" ]; then
    export DATABASE_URL=$STORE_BENCH_URL
else
    export GALAXY_PG_DURABLE=1
    # shellcheck source=scripts/postgres.sh
    . scripts/postgres.sh
    ensure_postgres
fi
say "cargo run --release -p galaxy-postgres --example store_bench -- ${args[*]}"
cargo run --release -q -p galaxy-postgres --example store_bench -- "${args[@]}"

if [ "$graphile" = 1 ]; then
    command -v npm >/dev/null || { echo "--graphile needs Node.js and npm" >&2; exit 1; }
    (cd scripts/peer-queue && [ -d node_modules ] || npm ci --no-audit --no-fund --silent)
    peer_db="galaxy_peer_queue_$$"
    peer_url=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$DATABASE_URL" "$peer_db")
    psql -q "$DATABASE_URL" -c "CREATE DATABASE $peer_db"
    jobs=$(python3 -c "print(max(10, int(10000 * float('$scale'))))")
    say "graphile-worker on the same cluster: $jobs jobs x $rounds rounds per concurrency"
    printf '\n| peer | concurrency | items | secs | items/s |\n|---|---:|---:|---:|---:|\n'
    status=0
    (cd scripts/peer-queue && DATABASE_URL=$peer_url JOBS=$jobs ROUNDS=$rounds node bench.js) || status=$?
    psql -q "$DATABASE_URL" -c "DROP DATABASE $peer_db WITH (FORCE)"
    exit "$status"
fi
