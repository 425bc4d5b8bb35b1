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
ensure_protoc
ensure_smtp_sink
ensure_openapi_validator
ensure_compose
ensure_browser

if [ -d galaxy-adapters/postgres ]; then
    # shellcheck source=scripts/postgres.sh
    . scripts/postgres.sh
    ensure_postgres
fi

# shellcheck source=scripts/docker.sh
. scripts/docker.sh
ensure_docker
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
