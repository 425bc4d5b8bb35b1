# Sourced by scripts/test.sh and .ci/run: installs build tools a fresh Debian machine lacks
# (as root, with apt), or says exactly what to install.

apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing $* (apt-get)"
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1; then
            apt-get update -qq >/dev/null 2>&1 || true
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
        fi
    else
        return 1
    fi
}

ensure_smtp_sink() {
    # The SMTP adapter's tests run a real SMTP server: Debian's aiosmtpd under python3.
    local py
    for py in "${GALAXY_TEST_PYTHON:-}" python3 /usr/bin/python3; do
        [ -n "$py" ] && "$py" -c 'import aiosmtpd' >/dev/null 2>&1 && return 0
    done
    apt_install python3-aiosmtpd openssl || {
        echo "the SMTP tests need aiosmtpd: install it (Debian: sudo apt-get install python3-aiosmtpd) or point GALAXY_TEST_PYTHON at a python with aiosmtpd." >&2
        return 1
    }
}

ensure_openapi_validator() {
    # galaxy-server's http_openapi test checks the OpenAPI document with
    # openapi-spec-validator (PyPI; Debian has no package of it).
    local py
    for py in "${GALAXY_TEST_PYTHON:-}" python3 /usr/bin/python3; do
        [ -n "$py" ] && "$py" -c 'import openapi_spec_validator' >/dev/null 2>&1 && return 0
    done
    if [ "$(id -u)" = 0 ]; then
        say "installing openapi-spec-validator (pip)"
        python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
        python3 -m pip install -q openapi-spec-validator 2>/dev/null \
            || python3 -m pip install -q --break-system-packages openapi-spec-validator
    else
        echo "the OpenAPI test needs openapi-spec-validator: pip install openapi-spec-validator (or point GALAXY_TEST_PYTHON at a python that has it)." >&2
        return 1
    fi
}

ensure_compose() {
    # galaxy-server's deploy_compose test brings deploy/compose.yaml up on the test daemon.
    command -v docker-compose >/dev/null 2>&1 && return 0
    apt_install docker-compose || {
        echo "the compose test needs docker-compose: install it (Debian: sudo apt-get install docker-compose)." >&2
        return 1
    }
}

ensure_protoc() {
    if [ -n "${PROTOC:-}" ] || command -v protoc >/dev/null 2>&1; then
        return 0
    fi
    apt_install protobuf-compiler || {
        echo "protoc (the Protocol Buffers compiler) is needed by one test, galaxy-push-grpc's tests/generated.rs, which checks the checked-in generated code against the .proto (no build needs it): install it (Debian: sudo apt-get install protobuf-compiler) or set PROTOC to its path." >&2
        return 1
    }
}

ensure_browser() {
    # The web pages' browser test (galaxy-server/tests/web_browser.rs) drives Debian's
    # headless Chromium over WebDriver. Without it that test skips itself, loudly.
    if command -v chromedriver >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1; then
        return 0
    fi
    apt_install chromium chromium-driver || {
        echo "" >&2
        echo "!!!!!!!! chromium and chromedriver are missing: the browser test of the web pages (web_browser) will be SKIPPED." >&2
        echo "!!!!!!!! Install them (Debian: sudo apt-get install chromium chromium-driver) to run it." >&2
        echo "" >&2
        return 0
    }
}
