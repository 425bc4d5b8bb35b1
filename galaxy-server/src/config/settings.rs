//! The list of every setting, as docs/operations.md shows it (a test in the parent module
//! checks that the two agree).

/// One documented setting: variable, default, meaning.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The environment variable.
    pub variable: &'static str,
    /// The default, as written in the docs (`-` for none).
    pub default: &'static str,
    /// What it does.
    pub meaning: &'static str,
}

/// The accepted range of every duration setting, `(variable, least, most)`: a value
/// outside it stops start-up naming the variable, so no duration can overflow a date
/// computed from it (`now + GALAXY_SESSION_TTL`).
pub const DURATION_RANGES: &[(&str, &str, &str)] = &[
    ("GALAXY_GEOIP_RELOAD_INTERVAL", "1s", "7d"),
    ("GALAXY_GEO_FLUSH_INTERVAL", "10ms", "1h"),
    ("GALAXY_GEO_SHUTDOWN_TIMEOUT", "10ms", "10m"),
    ("GALAXY_SHUTDOWN_TIMEOUT", "100ms", "1h"),
    ("GALAXY_HTTP_SHUTDOWN_TIMEOUT", "10ms", "1h"),
    ("GALAXY_HTTP_DRAIN_DELAY", "0s", "10m"),
    ("GALAXY_WORKER_SHUTDOWN_TIMEOUT", "10ms", "1h"),
    ("GALAXY_HTTP_REQUEST_TIMEOUT", "100ms", "1h"),
    ("GALAXY_LOGIN_CODE_TTL", "1m", "1d"),
    ("GALAXY_SESSION_TTL", "1m", "3650d"),
    ("GALAXY_MAIL_INTERVAL", "10ms", "1h"),
    ("GALAXY_MAIL_BACKOFF_INITIAL", "100ms", "1d"),
    ("GALAXY_MAIL_BACKOFF_MAX", "1s", "7d"),
    ("GALAXY_SWEEPER_INTERVAL", "10ms", "1d"),
    ("GALAXY_RETAIN_CHALLENGES", "1m", "365d"),
    ("GALAXY_RETAIN_SENT_MAIL", "1h", "3650d"),
    ("GALAXY_RETAIN_DEAD_MAIL", "1d", "3650d"),
    ("GALAXY_RETAIN_INBOUND_MAIL", "7d", "3650d"),
    ("GALAXY_RETAIN_NOTIFICATIONS", "1h", "3650d"),
    ("GALAXY_RETAIN_SESSIONS", "1h", "3650d"),
    ("GALAXY_RACE_NAME_TTL", "1m", "365d"),
    ("GALAXY_SMTP_TIMEOUT", "1s", "10m"),
    ("GALAXY_NOTIFICATION_INTERVAL", "10ms", "1h"),
    ("GALAXY_PUSH_WINDOW", "2m", "7d"),
    ("GALAXY_PUSH_SHUTDOWN_TIMEOUT", "10ms", "10m"),
    ("GALAXY_PUSH_POLL_INTERVAL", "10ms", "1h"),
    ("GALAXY_RUNTIME_INTERVAL", "10ms", "1h"),
    ("GALAXY_HEALTH_INTERVAL", "100ms", "1d"),
    ("GALAXY_RUNTIME_JOB_LEASE", "1s", "1d"),
    ("GALAXY_MIN_TURN_PERIOD", "0s", "30d"),
    ("GALAXY_CACHE_DEGRADED_TTL", "100ms", "1h"),
    ("GALAXY_CACHE_BUS_HEARTBEAT", "100ms", "10m"),
    ("GALAXY_INBOUND_INTERVAL", "10ms", "1h"),
    ("GALAXY_INBOUND_SMTP_TIMEOUT", "1s", "1h"),
    ("GALAXY_INBOUND_SMTP_SESSION_LIMIT", "1m", "24h"),
];

/// The settings whose values are secrets: `config check` shows them as `<redacted>`
/// (a test checks that every setting documented as "(secret" is here).
pub const SECRET_SETTINGS: &[&str] = &[
    "GALAXY_DATABASE_URL",
    "GALAXY_INTERNAL_TOKEN",
    "GALAXY_SMTP_URL",
    "GALAXY_LOGIN_CODE_KEY",
    "GALAXY_ENGINE_SECRET",
];

/// The settings that are lists, each with the separator of its entries: a TOML array
/// in the configuration file is joined with it, so `engines = ["a=x:1", "b=y:2"]` means
/// `GALAXY_ENGINES=a=x:1;b=y:2` (joined with `,` it would be one engine whose image is
/// `x:1,b=y:2`). An array for any other setting is refused. A test checks this against
/// each setting's documented separator.
pub const LIST_SEPARATORS: &[(&str, char)] = &[
    ("GALAXY_BOOTSTRAP_ADMINS", ','),
    ("GALAXY_TRUSTED_PROXIES", ','),
    ("GALAXY_LOG", ','),
    ("GALAXY_ENGINES", ';'),
    ("GALAXY_PROCESS_ENGINES", ';'),
    ("GALAXY_ENGINES_WITHOUT_TOKEN", ','),
];

/// Every setting the server reads.
pub const SETTINGS: &[Setting] = &[
    Setting {
        variable: "GALAXY_CONFIG_FILE",
        default: "-",
        meaning: "A TOML file of settings (keys are these variables without `GALAXY_`, in lower case; see \"Configuration file\"); the environment wins over it. `galaxy-server --config FILE` names it too.",
    },
    Setting {
        variable: "GALAXY_HTTP_ADDR",
        default: "127.0.0.1:8080",
        meaning: "Address of the HTTP API listener.",
    },
    Setting {
        variable: "GALAXY_GRPC_ADDR",
        default: "127.0.0.1:8081",
        meaning: "Address of the gRPC push listener (`SubscribePush`); it listens only when `GALAXY_INTERNAL_TOKEN` is set. It keeps at most 64 connections open and closes one that has not begun HTTP/2 and made a call its token authorises within 10 s. It speaks plain HTTP/2, without TLS: the internal token and every player's events cross the network in clear, so keep it on loopback or a private network (or behind a TLS tunnel) with the gateway. Needs the `grpc-push` feature.",
    },
    Setting {
        variable: "GALAXY_METRICS_ADDR",
        default: "-",
        meaning: "Address of the Prometheus metrics listener (`GET /metrics`); unset = no metrics listener.",
    },
    Setting {
        variable: "GALAXY_DATABASE_URL",
        default: "-",
        meaning: "Postgres URL (secret). Required by `galaxy-server` (not by `galaxy-server dev`). TLS as the URL's `sslmode` says: `prefer` (the default) uses it when the server offers it, without checking its certificate; `require` insists on it; `verify-full` also checks the certificate and the host name, against the public roots or the CA file `sslrootcert` names (a managed Postgres's CA: `?sslmode=verify-full&sslrootcert=/etc/galaxy/db-ca.pem`). A certificate that does not check out, or a server without TLS where the URL requires it, stops the start at once (exit 1) rather than being retried. Needs the `postgres` feature.",
    },
    Setting {
        variable: "GALAXY_DATABASE_MAX_CONNECTIONS",
        default: "10",
        meaning: "Size of the Postgres pool, two of them held by the cache and push listeners (see \"Sizing the database pool\"). Range: 4 to 1000. Needs the `postgres` feature.",
    },
    Setting {
        variable: "GALAXY_DATABASE_CONNECT_ATTEMPTS",
        default: "10",
        meaning: "Connection attempts at start-up (waits 250 ms, doubling to at most 5 s, between them) before `galaxy-server` gives up with an error. Range: 1 to 100. Needs the `postgres` feature.",
    },
    Setting {
        variable: "GALAXY_CACHE_BUS_HEARTBEAT",
        default: "2s",
        meaning: "With Postgres, every replica announces its cache writes on the `LISTEN/NOTIFY` channel `galaxy_changes` and drops what the others announce; this is how often a replica checks its listening connections (this one, and the one for push events on `galaxy_push`) with a note to itself (silence for three heartbeats counts as a lost connection). Range: 100ms to 10m. Needs the `postgres` feature.",
    },
    Setting {
        variable: "GALAXY_CACHE_DEGRADED_TTL",
        default: "2s",
        meaning: "While the listening connection is lost, every cache is emptied this often, so no replica serves an entry (a revoked session, a blocked user) older than this; when it is back, every cache starts over. Range: 100ms to 1h.",
    },
    Setting {
        variable: "GALAXY_DATA_DIR",
        default: "./galaxy-data",
        meaning: "Directory for local state: mail written as `mail/*.eml` when `GALAXY_SMTP_URL` is unset.",
    },
    Setting {
        variable: "GALAXY_INTERNAL_TOKEN",
        default: "-",
        meaning: "Token the gateway sends as `x-internal-token` (secret, at least 16 characters); unset = internal routes refuse every call.",
    },
    Setting {
        variable: "GALAXY_BOOTSTRAP_ADMINS",
        default: "-",
        meaning: "Comma-separated e-mails that get the admin role when they log in (dev mode adds `admin@localhost`); taking an address out does not take the role from its account: `galaxy-cli admin revoke` does.",
    },
    Setting {
        variable: "GALAXY_SMTP_URL",
        default: "-",
        meaning: "SMTP relay URL (secret) in lettre's connection-URL scheme, e.g. `smtp://user:pass@relay:587?tls=required` (STARTTLS; `tls=starttls` is still accepted) or `smtps://relay`; `tls=opportunistic` for STARTTLS when offered; plain `smtp://` (or `tls=none`) has no TLS at all, and a user and password there are refused unless `tls=none` is given (a relay on this host); `tls=opportunistic` sends them in the clear too when the relay offers no STARTTLS; an optional path sets the EHLO name (`smtp://relay/galaxy.example.org`); percent-encode `@`, `:`, `/` and `%` in the user and password. Unknown parameters, a user without a password and an IPv6 address as the host (use a name that resolves to it) are refused at startup, naming the problem but never the password. Set = mail is sent through it (in dev mode too), unset = mail is written as `.eml` files. Needs the `smtp` feature.",
    },
    Setting {
        variable: "GALAXY_SMTP_TIMEOUT",
        default: "30s",
        meaning: "Deadline of one SMTP send (connect and whole dialogue); the mail worker's claim lease is at least `GALAXY_MAIL_BATCH` times this. Range: 1s to 10m.",
    },
    Setting {
        variable: "GALAXY_SMTP_POOL_SIZE",
        default: "4",
        meaning: "Most SMTP connections kept open between sends. Range: 1 to 100. Needs the `smtp` feature.",
    },
    Setting {
        variable: "GALAXY_MAIL_FROM",
        default: "Galaxy <galaxy@localhost>",
        meaning: "Sender of every mail. With `GALAXY_SMTP_URL` set, an address of a public domain the relay sends for: a sender at `localhost` (the default), a name without a dot, `.local`, `.localhost` or `.internal` cannot pass SPF, DKIM or DMARC, so receivers refuse its mail or file it as spam; the server warns at start-up and `galaxy-cli doctor` too.",
    },
    Setting {
        variable: "GALAXY_GEOIP_DB",
        default: "-",
        meaning: "Path of a MaxMind GeoLite2/GeoIP2 Country or City database, opened and verified at start (a missing or corrupt file stops start-up) and reloaded when it changes; unset = every country is `unknown`. Needs the `geoip` feature.",
    },
    Setting {
        variable: "GALAXY_GEOIP_RELOAD_INTERVAL",
        default: "60s",
        meaning: "How often the `GALAXY_GEOIP_DB` file is checked for a new version (modification time, size, inode); a changed file is read and verified off the request path, a bad one is logged and the database in use kept. Range: 1s to 7d. Needs the `geoip` feature.",
    },
    Setting {
        variable: "GALAXY_GEO_FLUSH_INTERVAL",
        default: "30s",
        meaning: "How often the per-user country counters, summed in memory, are written to the store (at most this much of them is lost if the process dies without a graceful shutdown). Range: 10ms to 1h.",
    },
    Setting {
        variable: "GALAXY_GEO_SHUTDOWN_TIMEOUT",
        default: "5s",
        meaning: "How long writing the remaining country counters may take on shutdown. Range: 10ms to 10m.",
    },
    Setting {
        variable: "GALAXY_TRUSTED_PROXIES",
        default: "-",
        meaning: "Comma-separated addresses or CIDR networks of reverse proxies (e.g. `127.0.0.1,10.219.15.3`) whose `X-Forwarded-For` gives the client address for geo and login rate limits; unset = the TCP peer is the client. List the proxies themselves, not a wide network: a listed address that is not a proxy (an engine's, with a Docker server) can forge its client address.",
    },
    Setting {
        variable: "GALAXY_LOG",
        default: "info",
        meaning: "Comma-separated log filter directives (tracing `EnvFilter` syntax, e.g. `info,galaxy_core=debug`).",
    },
    Setting {
        variable: "GALAXY_LOG_FORMAT",
        default: "json",
        meaning: "`json` (one object per line, with trace and span ids) or `pretty` (`galaxy-server dev` at a terminal without the variable: `pretty`).",
    },
    Setting {
        variable: "GALAXY_OTEL_EXPORTER",
        default: "none",
        meaning: "Trace export: `none`, `stdout`, or `otlp`; unset = the standard `OTEL_TRACES_EXPORTER` (`otlp`, `console`), else `none`. `otlp` needs the `otlp` feature.",
    },
    Setting {
        variable: "GALAXY_OTEL_ENDPOINT",
        default: "-",
        meaning: "OTLP collector endpoint when `GALAXY_OTEL_EXPORTER=otlp`; unset = the standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`, else `http://localhost:4317` (gRPC) or `http://localhost:4318/v1/traces` (`OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`; an endpoint without a path gets `/v1/traces`). Needs the `otlp` feature.",
    },
    Setting {
        variable: "GALAXY_SHUTDOWN_TIMEOUT",
        default: "30s",
        meaning: "Overall bound on graceful shutdown; wins over every per-step timeout. Range: 100ms to 1h.",
    },
    Setting {
        variable: "GALAXY_HTTP_DRAIN_DELAY",
        default: "0s",
        meaning: "On shutdown, how long `/readyz` answers 503 while the HTTP listener still serves, before it closes: a load balancer then stops sending new requests before they would be refused. Set it to the balancer's check interval times its failure threshold behind one; it counts against `GALAXY_SHUTDOWN_TIMEOUT` and must be shorter than it. Range: 0s to 10m.",
    },
    Setting {
        variable: "GALAXY_HTTP_SHUTDOWN_TIMEOUT",
        default: "10s",
        meaning: "How long in-flight HTTP requests may take to finish on shutdown. Range: 10ms to 1h.",
    },
    Setting {
        variable: "GALAXY_WORKER_SHUTDOWN_TIMEOUT",
        default: "10s",
        meaning: "How long workers may take to finish their current item on shutdown. Range: 10ms to 1h.",
    },
    Setting {
        variable: "GALAXY_HTTP_BODY_LIMIT",
        default: "65536",
        meaning: "Largest accepted request body in bytes (larger bodies get 413). Range: 1024 to 16777216.",
    },
    Setting {
        variable: "GALAXY_HTTP_MAX_CONNECTIONS",
        default: "10000",
        meaning: "Open HTTP connections at most; at the cap the server stops accepting until one closes (new clients wait in the kernel's backlog), counted in `galaxy_http_connections_capped_total`; open connections are the gauge `galaxy_http_connections`. 1 to 1000000.",
    },
    Setting {
        variable: "GALAXY_HTTP_STREAMS_PER_USER",
        default: "8",
        meaning: "Live-update event streams (`GET /games/{id}/events`, one per open game page) one user may hold open on a replica at once; one more is refused with 429 and the page falls back to reloading itself. All users' streams together hold at most half of `GALAXY_HTTP_MAX_CONNECTIONS`, so streams never take every connection from other requests. Open streams are the gauge `galaxy_http_streams`. 1 to 1000.",
    },
    Setting {
        variable: "GALAXY_HTTP_REQUEST_TIMEOUT",
        default: "30s",
        meaning: "Longest time one HTTP request may take. Range: 100ms to 1h.",
    },
    Setting {
        variable: "GALAXY_LOGIN_CODE_KEY",
        default: "-",
        meaning: "The secret login codes are hashed under (HMAC-SHA256), at least 32 bytes (e.g. `openssl rand -hex 32`); the orders addresses' tokens are derived from it too (under a key of their own). The same on every replica, kept apart from the database (a leaked challenges or orders-address table is useless without it). Unset = generated once into `$GALAXY_DATA_DIR/login-code-key` (mode 600) and reused. Changing it invalidates the codes out at the time (they live minutes) and every orders address: the old ones stop working at once, and each player is shown a new one on their next page or game mail. A server holding another value than the first server of its database recorded refuses to start: change it with every server stopped, then run `galaxy-cli secrets reset`.",
    },
    Setting {
        variable: "GALAXY_LOGIN_CODE_DIGITS",
        default: "6",
        meaning: "Digits in a login code (6 to 10).",
    },
    Setting {
        variable: "GALAXY_LOGIN_CODE_TTL",
        default: "10m",
        meaning: "How long a login code works. Range: 1m to 1d.",
    },
    Setting {
        variable: "GALAXY_LOGIN_MAX_ATTEMPTS",
        default: "5",
        meaning: "Wrong codes before a login challenge locks. Range: 1 to 100.",
    },
    Setting {
        variable: "GALAXY_SESSION_TTL",
        default: "30d",
        meaning: "Lifetime of a session. Range: 1m to 3650d.",
    },
    Setting {
        variable: "GALAXY_RATE_LIMIT_EMAIL",
        default: "5/15m",
        meaning: "Login codes per e-mail address per window (`count/window`).",
    },
    Setting {
        variable: "GALAXY_RATE_LIMIT_IP",
        default: "20/15m",
        meaning: "Login codes per client IP per window (`count/window`).",
    },
    Setting {
        variable: "GALAXY_RATE_LIMIT_WRONG_CODES",
        default: "10/15m",
        meaning: "Wrong login codes per e-mail address per window, over all its codes (`count/window`, counting the codes issued within the window); past it every code for the address, the right one too, gets 429 until the window frees. Range: count 1 to 1000000, window 1s to 30d.",
    },
    Setting {
        variable: "GALAXY_LOGIN_MAX_UNUSED_CODES",
        default: "3",
        meaning: "Login codes one e-mail address may hold unused (not yet used, locked or expired) at once (1 to 100); past it a new code gets 429 until one is used or expires.",
    },
    Setting {
        variable: "GALAXY_MAIL_INTERVAL",
        default: "5s",
        meaning: "How often the mail worker polls an idle outbox (`galaxy-server dev` without the variable: 200ms, so a login code is there at once). Range: 10ms to 1h.",
    },
    Setting {
        variable: "GALAXY_MAIL_BATCH",
        default: "16",
        meaning: "Mails claimed per pass. Range: 1 to 1000.",
    },
    Setting {
        variable: "GALAXY_MAIL_MAX_ATTEMPTS",
        default: "8",
        meaning: "Attempts before a mail is dead. Range: 1 to 100.",
    },
    Setting {
        variable: "GALAXY_MAIL_BACKOFF_INITIAL",
        default: "30s",
        meaning: "First retry delay of a mail (doubles per attempt, +-20% jitter). Range: 100ms to 1d.",
    },
    Setting {
        variable: "GALAXY_MAIL_BACKOFF_MAX",
        default: "1h",
        meaning: "Longest retry delay of a mail. Range: 1s to 7d.",
    },
    Setting {
        variable: "GALAXY_NOTIFICATION_INTERVAL",
        default: "1s",
        meaning: "How often the notification worker polls idle routes (push and e-mail fan-out). Range: 10ms to 1h.",
    },
    Setting {
        variable: "GALAXY_PUSH_RING_CAPACITY",
        default: "4096",
        meaning: "Most push events kept for cursor replay.",
    },
    Setting {
        variable: "GALAXY_PUSH_WINDOW",
        default: "10m",
        meaning: "Oldest push event kept for replay; a gateway away for longer gets `push.resync`. At least 2m: longer than a notification route's lease (1 min), so a route sent again after its worker died finds its event in the log and appends no second one. Range: 2m to 7d.",
    },
    Setting {
        variable: "GALAXY_PUSH_SUBSCRIBER_BUFFER",
        default: "1024",
        meaning: "Live push events queued for one gateway that does not read; past it the stream ends with `RESOURCE_EXHAUSTED`.",
    },
    Setting {
        variable: "GALAXY_PUSH_SHUTDOWN_TIMEOUT",
        default: "5s",
        meaning: "How long queued push events may take to reach connected gateways on shutdown, before their streams end with `UNAVAILABLE`. Range: 10ms to 10m.",
    },
    Setting {
        variable: "GALAXY_PUSH_POLL_INTERVAL",
        default: "1s",
        meaning: "How often a replica reads the shared push log even when no `NOTIFY` woke it: the bound on how late another replica's event can reach this replica's gateways should a note be lost (notes normally bring it within milliseconds). Range: 10ms to 1h.",
    },
    Setting {
        variable: "GALAXY_SWEEPER_INTERVAL",
        default: "60s",
        meaning: "How often the lobby sweeper (expired race names, enrollment deadlines) and the retention sweeper run. Range: 10ms to 1d.",
    },
    Setting {
        variable: "GALAXY_RETAIN_CHALLENGES",
        default: "1d",
        meaning: "How long a login challenge is kept after it expired; then the retention sweeper deletes it. At least the longest login-limit window (the limits count stored challenges). Range: 1m to 365d.",
    },
    Setting {
        variable: "GALAXY_RETAIN_SENT_MAIL",
        default: "30d",
        meaning: "How long a sent mail is kept in the outbox (its attempts with it); then the retention sweeper deletes it. Undelivered mail stays; dead mail goes after `GALAXY_RETAIN_DEAD_MAIL`. Range: 1h to 3650d.",
    },
    Setting {
        variable: "GALAXY_RETAIN_DEAD_MAIL",
        default: "90d",
        meaning: "How long a dead mail (out of attempts, or refused for good) is kept in the outbox, where an admin may retry it; then the retention sweeper deletes it with its attempts. A login code asked for an address that bounces makes one without any account, so the outbox would otherwise grow for ever. Range: 1d to 3650d.",
    },
    Setting {
        variable: "GALAXY_RETAIN_INBOUND_MAIL",
        default: "30d",
        meaning: "How long an inbound mail of orders by e-mail (a player's message, stored whole until handled, then only its sender, outcome and dedupe key: a hash of its Message-ID, sender and orders, with the digest of the orders token it was for, which ties it to that player's game) is kept once handled, with the records of the answers sent; then the retention sweeper deletes it. Mail not yet handled stays. Its Message-ID is what makes a second delivery of it a duplicate, so keep it longer than your MTA retries a mail (Postfix: 5 days). Range: 7d to 3650d.",
    },
    Setting {
        variable: "GALAXY_RETAIN_NOTIFICATIONS",
        default: "30d",
        meaning: "How long a notification is kept whole once every route of it was delivered; then the retention sweeper compacts it: its routes are deleted and its payload (a turn report's holds the report whole) emptied, the rest kept so that its idempotency key still makes a repeat a no-op. One with a route still to dispatch or dead-lettered stays whole. Range: 1h to 3650d.",
    },
    Setting {
        variable: "GALAXY_RETAIN_SESSIONS",
        default: "30d",
        meaning: "How long a session is kept once it ended (expired, or was revoked: signed out, or by an admin's block); then the retention sweeper deletes it. Every login makes a session, so the table would otherwise grow for ever. Range: 1h to 3650d.",
    },
    Setting {
        variable: "GALAXY_MIN_TURN_PERIOD",
        default: "1h",
        meaning: "The shortest time a game's turn schedule may leave between two turns (a schedule with closer turns, or one that never fires again, is refused with 422); games created by an admin are exempt. `0s` turns the check off. Range: 0s to 30d.",
    },
    Setting {
        variable: "GALAXY_MAX_HOSTED_GAMES",
        default: "5",
        meaning: "Games one user may host that are not yet finished or cancelled, a game they cancelled themselves in the last day included (so creating and cancelling in a loop stops at the limit; 403 beyond; counted atomically, so concurrent requests cannot pass it); admins are exempt. 1 to 10000.",
    },
    Setting {
        variable: "GALAXY_RACE_NAME_TTL",
        default: "7d",
        meaning: "How long a race name stays reserved for a pending application. Range: 1m to 365d.",
    },
    Setting {
        variable: "GALAXY_RUNTIME",
        default: "docker (dev: process)",
        meaning: "Container runtime of the engines: `docker` (one container per game), `process` (engines as local child processes on loopback ports; the default of `galaxy-server dev`) or `none` (games can be created and enrolled but never start). Ignored when the embedding program plugs in a runtime of its own (`Adapters::with_container_runtime`, see docs/architecture.md). `docker` needs the `docker` feature.",
    },
    Setting {
        variable: "GALAXY_ENGINES",
        default: "reference=galaxy-engine:0.2",
        meaning: "Engines of the Docker runtime: `name=image` entries separated by `;` (e.g. `reference=galaxy-engine:0.2; classic=classic-pbem:2`). The names are what games may ask for (others get 422); a bad list stops start-up.",
    },
    Setting {
        variable: "GALAXY_PROCESS_ENGINES",
        default: "reference=<galaxy-engine beside galaxy-server, else galaxy-server reference-engine>",
        meaning: "Engines of the process runtime: `name=command line` entries separated by `;` (e.g. `reference=/opt/galaxy/galaxy-engine; other=/usr/bin/pbem --quiet`); a relative program path (`./target/debug/galaxy-engine`) is taken from the server's working directory, a bare name is looked up in `PATH`; each engine gets `GALAXY_ENGINE_ADDR`, `GALAXY_ENGINE_DATA_DIR` (under `$GALAXY_DATA_DIR/engines`) and `GALAXY_ENGINE_TOKEN`.",
    },
    Setting {
        variable: "GALAXY_ENGINE_MEMORY",
        default: "512MiB",
        meaning: "Memory limit of each engine: a size from 16MiB to 64GiB (`536870912`, `512MiB`, `2GiB`) or `none`. Docker: the container's memory, with no swap on top; process runtime: `RLIMIT_DATA` (see \"Engine confinement\").",
    },
    Setting {
        variable: "GALAXY_ENGINE_CPUS",
        default: "1",
        meaning: "CPU limit of each engine in cores, 0.01 to 256 (`0.5` is half a core), or `none`. Docker only (the process runtime has no cgroup).",
    },
    Setting {
        variable: "GALAXY_ENGINE_PIDS",
        default: "256",
        meaning: "Most processes and threads of each engine, 16 to 65536, or `none`. Docker only.",
    },
    Setting {
        variable: "GALAXY_ENGINE_USER",
        default: "65534:65534",
        meaning: "User of each Docker engine: `uid[:gid]` (or names the image knows), or `image` for the image's own `USER`. The engine's `/data` volume must be writable by it (the reference image's is). Needs the `docker` feature.",
    },
    Setting {
        variable: "GALAXY_ENGINE_SECRET",
        default: "-",
        meaning: "Secret (at least 32 characters) from which each game's engine credential (`GALAXY_ENGINE_TOKEN`) derives; every replica needs the same. Unset = generated once into `$GALAXY_DATA_DIR/engine-secret` (mode 600) and reused. Changing it locks running engines out until their containers are created again (a restarted server with the process runtime removes each such engine, and its game waits paused for `recreate-engine`). A server holding another value than the first server of its database recorded refuses to start: change it with every server stopped, then run `galaxy-cli secrets reset`.",
    },
    Setting {
        variable: "GALAXY_ENGINES_WITHOUT_TOKEN",
        default: "-",
        meaning: "Comma-separated registered engines allowed to run although they do not check their credential. Any other engine must answer 401 to a call without `Authorization`, or its start fails.",
    },
    Setting {
        variable: "GALAXY_DOCKER_NETWORK",
        default: "per-game",
        meaning: "How Docker engines are networked: `per-game` (each alone on an `--internal` network of its own: no outside world, no other engine), `loopback` (default bridge, port published on 127.0.0.1: engines reach each other and the outside world) or `network:<name>` (one shared user-defined network, for a server in a container). Needs the `docker` feature.",
    },
    Setting {
        variable: "GALAXY_DOCKER_SUBNETS",
        default: "10.213.0.0/16",
        meaning: "IPv4 range the `per-game` networks are carved from, one `/29` per game (a `/16` holds 8192 games); must not overlap a network the host routes elsewhere. Needs the `docker` feature.",
    },
    Setting {
        variable: "GALAXY_DOCKER_SERVER_CONTAINER",
        default: "-",
        meaning: "With `per-game` networks, the name or id of the server's own container when the server runs in one: it is connected to each game's network (and disconnected when the game's container goes). Unset = the server runs on the Docker host, which reaches the networks directly. Needs the `docker` feature.",
    },
    Setting {
        variable: "GALAXY_RUNTIME_WORKERS",
        default: "4",
        meaning: "Start, stop and restart jobs run at once (the job pool's bound). A job is claimed as soon as a slot is free, so a stop never waits behind a start that waits for its engine. Range: 1 to 256.",
    },
    Setting {
        variable: "GALAXY_INSTANCE",
        default: "galaxy",
        meaning: "This installation's name (`[a-z0-9_.-]`, 1 to 63), stamped on its engine containers as the label `galaxy.instance`; the reconciler only adopts or removes containers carrying it, so installations sharing a Docker daemon leave each other alone.",
    },
    Setting {
        variable: "GALAXY_RUNTIME_INTERVAL",
        default: "1s",
        meaning: "How often the runtime job worker and the turn scheduler poll when idle. Range: 10ms to 1h.",
    },
    Setting {
        variable: "GALAXY_RUNTIME_JOB_LEASE",
        default: "10m",
        meaning: "How long a claimed start, stop or restart job is held; a running job renews it every third of this, so it need not cover the slowest start. A job whose server died is taken over once this lapses. Range: 1s to 1d.",
    },
    Setting {
        variable: "GALAXY_MAX_ORDERS_BYTES",
        default: "262144",
        meaning: "Largest `orders` value (serialised JSON, in bytes) a player may submit (larger: 422 `orders_too_large`); the orders route accepts a body this size plus 64 KiB for the envelope. 1024 to 8388608.",
    },
    Setting {
        variable: "GALAXY_MAX_REPORT_BYTES",
        default: "1048576",
        meaning: "Largest engine answer, and so the largest turn report, the platform fetches and archives, in bytes; an engine whose report is larger fails the turn with a health event. 4096 to 67108864.",
    },
    Setting {
        variable: "GALAXY_HEALTH_INTERVAL",
        default: "15s",
        meaning: "Period of the engine health probe, the container inspect pass and the reconciler. Range: 100ms to 1d.",
    },
    Setting {
        variable: "GALAXY_PROBE_FAILURE_THRESHOLD",
        default: "3",
        meaning: "Consecutive failed `/healthz` probes that make an engine `probe_failed` (and its runtime unhealthy, which refuses a resume); one answered probe makes it healthy again. Each replica counts its own probes; one with fewer failures leaves the verdict as it is. Range: 1 to 100.",
    },
    Setting {
        variable: "GALAXY_PAUSE_ON_UNHEALTHY",
        default: "false",
        meaning: "Whether a game whose engine becomes `probe_failed` is paused (`true` or `false`).",
    },
    Setting {
        variable: "GALAXY_MAIL_DOMAIN",
        default: "-",
        meaning: "Domain of the orders addresses (`orders+<token>@<domain>`), for orders by e-mail; unset = orders by e-mail is off (no addresses, `POST /api/v1/internal/mail-in` answers 404, no SMTP listener).",
    },
    Setting {
        variable: "GALAXY_INBOUND_MAX_BYTES",
        default: "262144",
        meaning: "Largest inbound message in bytes (256 KiB); a larger one is refused (SMTP 552, `galaxy-cli mail-in` exit 65). Range: 1024 to 16777216.",
    },
    Setting {
        variable: "GALAXY_INBOUND_REPLIES_PER_HOUR",
        default: "20",
        meaning: "Replies per player an hour (verdicts, and answers that orders were not taken); beyond it mailed orders are still handled (sent to the engine, or not taken) but not answered (no mail loops): the game page shows what is in force. Range: 1 to 1000.",
    },
    Setting {
        variable: "GALAXY_INBOUND_INTERVAL",
        default: "1s",
        meaning: "Idle poll of the mail-in worker, which processes stored inbound mail. Range: 10ms to 1h.",
    },
    Setting {
        variable: "GALAXY_INBOUND_SMTP_ADDR",
        default: "-",
        meaning: "Address of the inbound SMTP listener (point an MX record at it); unset = no listener. Needs `GALAXY_MAIL_DOMAIN` set. Needs the `smtp-in` feature.",
    },
    Setting {
        variable: "GALAXY_INBOUND_SMTP_TLS_CERT",
        default: "-",
        meaning: "PEM certificate chain of the inbound SMTP listener; with `GALAXY_INBOUND_SMTP_TLS_KEY` it offers STARTTLS. Needs the `smtp-in` feature.",
    },
    Setting {
        variable: "GALAXY_INBOUND_SMTP_TLS_KEY",
        default: "-",
        meaning: "PEM private key of `GALAXY_INBOUND_SMTP_TLS_CERT`. Needs the `smtp-in` feature.",
    },
    Setting {
        variable: "GALAXY_INBOUND_SMTP_MAX_CONNECTIONS",
        default: "100",
        meaning: "Open connections of the inbound SMTP listener at most; more are answered 421 and closed. Range: 1 to 100000.",
    },
    Setting {
        variable: "GALAXY_INBOUND_SMTP_CLIENT_CONNECTIONS",
        default: "5",
        meaning: "Open inbound SMTP connections per client (an IPv4 address, or an IPv6 /64 network: one subscriber commonly holds a whole /64) at most; more are answered 421 and closed. Range: 1 to 10000.",
    },
    Setting {
        variable: "GALAXY_INBOUND_SMTP_RATE_LIMIT",
        default: "60/1h",
        meaning: "Messages one client (an IPv4 address or an IPv6 /64) may send the inbound SMTP listener per window (`count/window`); beyond it `MAIL` is answered 450 (try later).",
    },
    Setting {
        variable: "GALAXY_INBOUND_SMTP_TIMEOUT",
        default: "60s",
        meaning: "Longest wait of the inbound SMTP listener for a client's next line; then 421 and the connection is closed. Range: 1s to 1h.",
    },
    Setting {
        variable: "GALAXY_INBOUND_SMTP_SESSION_LIMIT",
        default: "10m",
        meaning: "Longest an inbound SMTP session lasts in all, however busy (a client trickling one line a minute would otherwise hold its connection for ever); then 421 and the connection is closed, and the sender reconnects for what is left. Range: 1m to 24h.",
    },
];
