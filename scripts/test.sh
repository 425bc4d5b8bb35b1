#!/usr/bin/env bash
# Runs every test of the workspace. This is the README's test command and the last step
# of .ci/run.
#
# Set-up it does on its own:
# - falls back to `cargo test` when cargo-nextest is missing;
# - installs protoc (protobuf-compiler) with apt when root and it is missing (only the test
#   that checks the checked-in gRPC code against its .proto uses it; no build does);
# - installs openapi-spec-validator (pip) and docker-compose (apt) when root and missing;
# - when the Postgres adapter is present and DATABASE_URL is unset, starts a throwaway
#   Postgres from the machine's binaries (installing them with apt when root) and tears it
#   down afterwards (scripts/postgres.sh);
# - makes sure a Docker daemon answers (installing docker.io and starting dockerd when
#   root) and builds the reference engine image (scripts/docker.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }

# shellcheck source=scripts/setup.sh
. scripts/setup.sh
# Every check runs, so one run names every missing piece; the tests start only when none is.
missing=0
ensure_protoc || missing=1
ensure_smtp_sink || missing=1
ensure_openapi_validator || missing=1
ensure_compose || missing=1
ensure_browser || missing=1

if [ -d galaxy-adapters/postgres ]; then
    # shellcheck source=scripts/postgres.sh
    . scripts/postgres.sh
    ensure_postgres || missing=1
fi

# shellcheck source=scripts/docker.sh
. scripts/docker.sh
ensure_docker || missing=1
if [ "$missing" -ne 0 ]; then
    say "install what is named above (as root this script installs it itself), then run it again"
    exit 1
fi
ensure_engine_image

if cargo nextest --version >/dev/null 2>&1; then
    say "cargo nextest run --workspace --all-targets"
    cargo nextest run --workspace --all-targets --no-fail-fast
else
    say "cargo-nextest not found (install with: cargo install cargo-nextest); using cargo test"
    cargo test --workspace --all-targets --no-fail-fast
fi
say "cargo test --workspace --doc"
cargo test --workspace --doc
say "all tests passed"
