#!/usr/bin/env bash
# The feature matrix of galaxy-server (run by .ci/run after clippy):
# - no build needs protoc: galaxy-server's build graph, with every feature on, holds no
#   protobuf code generator (the gRPC code is generated ahead and committed), and the
#   builds below run with PROTOC pointing at nothing;
# - `cargo check` of galaxy-server with no default feature, with each feature alone, and
#   with the default set, each free of warnings; then galaxy-cli with the features it
#   asks for (its own resolution, not unified with the rest of the workspace).
# One target directory, `cargo check` only: on a warm target it takes seconds per build.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }

features=(postgres docker smtp geoip grpc-push otlp smtp-in web)
generators='prost-build|tonic-build|tonic-prost-build|protobuf-codegen|protobuf-src|protoc-bin-vendored|protoc-prebuilt|protoc'

say "no protobuf code generator in galaxy-server's build graph (all features)"
tree=$(cargo tree -p galaxy-server --all-features -e normal,build --prefix none --locked)
if found=$(grep -E "^(${generators}) v" <<<"$tree"); then
    echo "galaxy-server's build needs a protobuf code generator (so protoc):" >&2
    echo "$found" | sort -u >&2
    exit 1
fi

# A build script that looked for protoc would find nothing.
export PROTOC=/nonexistent/protoc

started=$SECONDS
check() {
    local what=$1
    shift
    local t=$SECONDS out
    say "cargo check $* ($what)"
    if ! out=$(cargo check --locked "$@" 2>&1); then
        printf '%s\n' "$out" >&2
        echo "feature matrix: $what does not build" >&2
        exit 1
    fi
    if grep -q '^warning' <<<"$out"; then
        printf '%s\n' "$out" >&2
        echo "feature matrix: $what builds with warnings" >&2
        exit 1
    fi
    say "  ok in $((SECONDS - t))s"
}

check "no default feature" -p galaxy-server --no-default-features
for feature in "${features[@]}"; do
    check "only $feature" -p galaxy-server --no-default-features --features "$feature"
done
check "default features" -p galaxy-server
check "galaxy-cli's features" -p galaxy-cli
say "feature matrix done in $((SECONDS - started))s"
