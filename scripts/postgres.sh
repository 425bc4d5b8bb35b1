# Sourced by scripts/test.sh: makes sure DATABASE_URL points at a Postgres that answers.
#
# When DATABASE_URL is set it is used as is. Otherwise a throwaway cluster is created with
# the machine's Postgres binaries (initdb + pg_ctl) in a temporary directory, on a free
# port, owned by the `postgres` user when running as root (initdb refuses root), and torn
# down when the calling script exits, also on failure. The cluster trades durability for
# speed (fsync off) unless GALAXY_PG_DURABLE=1 asks for the server defaults (the store
# benchmark, whose figures mean nothing without fsync).

pg_bin_dir() {
    local dir
    for dir in "${GALAXY_PG_BIN:-}" /usr/lib/postgresql/*/bin; do
        if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            printf '%s\n' "$dir"
            return 0
        fi
    done
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

pg_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# A test CA and a certificate for 127.0.0.1 it signed, in directory $1 (the server's key
# readable by its owner only, as Postgres requires); fails without openssl.
pg_tls_files() {
    command -v openssl >/dev/null 2>&1 || return 1
    local dir=$1
    mkdir -p "$dir" && chmod 700 "$dir"
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 7 \
        -subj "/CN=Galaxy test CA" >/dev/null 2>&1 || return 1
    openssl req -new "${ec[@]}" -keyout "$dir/server.key" -out "$dir/server.csr" \
        -subj "/CN=127.0.0.1" >/dev/null 2>&1 || return 1
    printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' >"$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -CAcreateserial -out "$dir/server.crt" -days 7 -extfile "$dir/server.ext" >/dev/null 2>&1 || return 1
    chmod 600 "$dir/server.key" "$dir/ca.key"
}

ensure_postgres() {
    if [ -n "${DATABASE_URL:-}" ]; then
        say "using DATABASE_URL from the environment"
        return 0
    fi
    local bin
    if ! bin=$(pg_bin_dir); then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            say "installing Postgres (apt-get install postgresql)"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
            bin=$(pg_bin_dir) || { echo "Postgres binaries still missing after install" >&2; return 1; }
        else
            echo "Postgres server binaries (initdb, pg_ctl) not found. Install them (Debian: sudo apt-get install postgresql) or set DATABASE_URL to a Postgres you own." >&2
            return 1
        fi
    fi
    PG_TMP=$(mktemp -d /tmp/galaxy-pg.XXXXXX)
    local port run_as=()
    port=$(pg_free_port)
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$PG_TMP"
        run_as=(runuser -u postgres --)
    fi
    local speed="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    if [ "${GALAXY_PG_DURABLE:-0}" = 1 ]; then
        speed=""
    fi
    say "starting a throwaway Postgres in $PG_TMP on port $port${speed:+ ($speed)}"
    "${run_as[@]}" "$bin/initdb" -D "$PG_TMP/data" -U galaxy --auth=trust --no-sync -E UTF8 >"$PG_TMP/initdb.log" 2>&1 \
        || { cat "$PG_TMP/initdb.log" >&2; return 1; }
    local tls=""
    if pg_tls_files "$PG_TMP/tls"; then
        [ "$(id -u)" = 0 ] && chown -R postgres: "$PG_TMP/tls"
        tls="-c ssl=on -c ssl_cert_file=$PG_TMP/tls/server.crt -c ssl_key_file=$PG_TMP/tls/server.key"
        # The TLS tests connect with verify-full against this CA; everything else speaks
        # plain TCP, as before (an explicit sslmode in a URL wins over the variable).
        export GALAXY_TEST_PG_CA="$PG_TMP/tls/ca.crt"
        export PGSSLMODE=disable
        say "it also serves TLS, with a CA of its own (GALAXY_TEST_PG_CA) for the TLS tests"
    else
        say "openssl not found: the throwaway Postgres speaks no TLS (the TLS tests say SKIPPED)"
    fi
    "${run_as[@]}" "$bin/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 \
        -o "-p $port -k $PG_TMP -c listen_addresses=127.0.0.1 $speed $tls -c max_connections=300" start >/dev/null \
        || { cat "$PG_TMP/server.log" >&2; return 1; }
    PG_BIN=$bin
    PG_RUN_AS=("${run_as[@]}")
    export PG_TMP PG_BIN
    export DATABASE_URL="postgres://galaxy@127.0.0.1:$port/postgres"
    trap stop_postgres EXIT
}

stop_postgres() {
    if [ -n "${PG_TMP:-}" ] && [ -d "$PG_TMP/data" ]; then
        "${PG_RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$PG_TMP"
    fi
}
