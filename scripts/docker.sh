# Sourced by scripts/test.sh (and usable by hand): makes sure a Docker daemon answers and
# the reference engine image exists, then exports GALAXY_REQUIRE_DOCKER=1 so the Docker
# tests fail instead of skipping.
#
# - ensure_docker: uses the daemon of DOCKER_HOST or /var/run/docker.sock when one
#   answers. Otherwise, as root, installs Debian's docker.io when dockerd is missing and
#   starts `dockerd` in the background (log in $GALAXY_DOCKERD_LOG, default
#   /tmp/galaxy-dockerd.log), waiting up to 60 s for it. The daemon is left running
#   afterwards, like any system service. Fails with a message naming what is missing;
#   GALAXY_SKIP_DOCKER=1 skips all of this (the Docker tests then skip, saying why).
# - ensure_engine_image: builds the reference engine image galaxy-engine:0.2 FROM scratch
#   with `galaxy-cli engine image` (a static release build of the engine into
#   target/static, then a local image build; no registry involved). Cheap when nothing
#   changed.
#
# Expects a `say` function from the caller (scripts/test.sh defines one).

docker_answers() {
    command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1
}

ensure_docker() {
    if [ -n "${GALAXY_SKIP_DOCKER:-}" ]; then
        say "GALAXY_SKIP_DOCKER is set: Docker tests will skip"
        return 0
    fi
    if docker_answers; then
        say "using the running Docker daemon"
        export GALAXY_REQUIRE_DOCKER=1
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "No Docker daemon answers. Start one (Debian: sudo apt-get install docker.io && sudo systemctl start docker), add yourself to the docker group, or set GALAXY_SKIP_DOCKER=1 to skip the Docker tests." >&2
        return 1
    fi
    if ! command -v dockerd >/dev/null 2>&1 || [ ! -x /usr/bin/docker ]; then
        if ! command -v apt-get >/dev/null 2>&1; then
            echo "dockerd is missing and apt-get is not available: install Docker, or set GALAXY_SKIP_DOCKER=1." >&2
            return 1
        fi
        say "installing Docker (apt-get install docker.io)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null \
            || { echo "apt-get install docker.io failed" >&2; return 1; }
    fi
    local log=${GALAXY_DOCKERD_LOG:-/tmp/galaxy-dockerd.log}
    say "starting dockerd (log: $log)"
    nohup dockerd >"$log" 2>&1 &
    local i
    for i in $(seq 1 60); do
        if docker_answers; then
            export GALAXY_REQUIRE_DOCKER=1
            return 0
        fi
        sleep 1
    done
    echo "dockerd did not answer within 60 s; its log ($log) ends with:" >&2
    tail -n 20 "$log" >&2
    return 1
}

ensure_engine_image() {
    if [ -z "${GALAXY_REQUIRE_DOCKER:-}" ]; then
        return 0
    fi
    say "building the reference engine image (galaxy-cli engine image)"
    cargo run --quiet -p galaxy-cli -- engine image --tag galaxy-engine:0.2
}
