//! The schema on a real server: migrations (idempotent, refusing a newer schema), the
//! invariants the database itself holds, history rows, and claims under contention.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{TimeDelta, TimeZone, Utc};
use galaxy_core::domain::game::EngineName;
use galaxy_core::domain::lease::{ClaimRequest, Finish};
use galaxy_core::domain::mail::{
    AttemptOutcome, MailAttempt, MailDelivery, MailStatus, OutgoingMail,
};
use galaxy_core::domain::runtime::{RuntimeRecord, RuntimeStatus};
use galaxy_core::domain::user::{Email, Locale};
use galaxy_core::domain::{GameId, LeaseToken, MailId, Timestamp};
use galaxy_core::ports::{
    JobOutcome, MailAttemptEnd, MailNext, MailStore, NotificationStore, RouteNext, RuntimeJobStore,
    RuntimeRecordStore, StoreError,
};
use galaxy_postgres::testing::{SeedQueue, TestDatabases};
use galaxy_postgres::{ConnectOptions, PgStore, SetupError, connect_with, known_versions, migrate};
use sqlx::PgPool;
use uuid::Uuid;

async fn databases() -> TestDatabases {
    match TestDatabases::from_env().await {
        Ok(databases) => databases,
        Err(error) => panic!("{error}"),
    }
}

fn at(secs: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap() + TimeDelta::seconds(secs)
}

/// Tables, columns, constraints and indexes of the public schema, and the applied
/// migrations: equal snapshots mean an unchanged schema.
async fn schema_snapshot(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type \
             FROM information_schema.columns WHERE table_schema = 'public' \
         UNION ALL SELECT 'constraint ' || conname FROM pg_constraint \
             WHERE connamespace = 'public'::regnamespace \
         UNION ALL SELECT 'index ' || indexname FROM pg_indexes WHERE schemaname = 'public' \
         UNION ALL SELECT 'migration ' || version || ' ' || success FROM _sqlx_migrations \
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .expect("schema snapshot")
}

#[tokio::test]
async fn migrating_twice_changes_nothing() {
    let dbs = databases().await;
    let pool = dbs.pool(dbs.empty_database().await.unwrap()).await.unwrap();
    migrate(&pool).await.expect("first migration");
    let first = schema_snapshot(&pool).await;
    migrate(&pool).await.expect("second migration");
    assert_eq!(schema_snapshot(&pool).await, first);
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY 1")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(applied, known_versions());
    assert!(
        first
            .iter()
            .any(|s| s == "index mail_deliveries_ready_claim"),
        "{first:?}"
    );
    pool.close().await;
    dbs.cleanup().await.unwrap();
}

/// Migration 0029 on a database that held orders tokens in the clear: the token column
/// goes, each address keeps the digest of its old token (mail to it still finds it) and a
/// seed no key derives that token from (so it is re-issued when first shown).
#[tokio::test]
async fn orders_tokens_of_an_older_schema_become_digests() {
    use galaxy_core::domain::mail_in::{OrdersKey, OrdersToken};
    use galaxy_core::ports::InboundMailStore;

    static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
    let dbs = databases().await;
    let options = dbs.empty_database().await.unwrap();
    let pool = dbs.pool(options.clone()).await.unwrap();
    MIGRATIONS
        .run_to(28, &pool)
        .await
        .expect("the schema before 0029");
    let (user, game) = (Uuid::now_v7(), Uuid::now_v7());
    let legacy = "abcdefghijkmnpqrstuv";
    sqlx::query(
        "INSERT INTO orders_addresses (user_id, game_id, token, report_delivery, rotated_at) \
         VALUES ($1, $2, $3, 'attachment', now())",
    )
    .bind(user)
    .bind(game)
    .bind(legacy)
    .execute(&pool)
    .await
    .unwrap();
    migrate(&pool).await.expect("0029 on the older schema");
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_name = 'orders_addresses' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(!columns.iter().any(|c| c == "token"), "{columns:?}");
    let dump: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(a)::text FROM orders_addresses a")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(!dump.iter().any(|row| row.contains(legacy)), "{dump:?}");

    let store = PgStore::new(pool.clone());
    let token = OrdersToken::parse(legacy).unwrap();
    let found = store
        .find_orders_address(&token.digest())
        .await
        .unwrap()
        .expect("the old address still finds its player");
    assert_eq!(
        (found.user_id.as_uuid(), found.game_id.as_uuid()),
        (user, game)
    );
    assert_eq!(found.report_delivery.as_str(), "attachment");
    let key = OrdersKey::derive(&[5; 32]).unwrap();
    assert_eq!(
        key.recover(&found.token),
        None,
        "no key shows the old token"
    );
    pool.close().await;
    dbs.cleanup().await.unwrap();
}

/// Migration 0031 on a database an earlier version kept whole mail in: a sent turn mail
/// loses its orders token (subject, bodies, Reply-To), a handled inbound mail its message
/// and recipients; a mail not yet sent and one not yet handled keep everything.
#[tokio::test]
async fn orders_tokens_kept_by_an_older_version_leave_the_stored_mail() {
    use galaxy_core::domain::InboundMailId;
    use galaxy_core::domain::mail::MailExtras;
    use galaxy_core::domain::mail_in::InboundMail;
    use galaxy_core::ports::InboundMailStore;

    static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
    let dbs = databases().await;
    let pool = dbs.pool(dbs.empty_database().await.unwrap()).await.unwrap();
    MIGRATIONS
        .run_to(30, &pool)
        .await
        .expect("the schema before 0031");
    let store = PgStore::new(pool.clone());
    let (sent_token, pending_token) = ("abcdefghijkmnpqrstuv", "vutsrqpnmkjihgfedcba");
    let turn_mail = |token: &str| {
        let address = format!("orders+{token}@galaxy.example");
        OutgoingMail {
            idempotency_key: format!("turn-3:{}", Uuid::now_v7()),
            to: Email::parse("ann@example.org").unwrap(),
            kind: "turn_completed".to_owned(),
            locale: Locale::default(),
            subject: format!("Turn 3 ({address})"),
            text_body: format!("Reply to {address}.\nThe report."),
            html_body: Some(format!("<a href=\"mailto:{address}\">{address}</a>")),
            extras: MailExtras {
                reply_to: Some(Email::parse(&address).unwrap()),
                ..MailExtras::default()
            },
        }
    };
    let sent = MailDelivery::new(
        MailId::from_uuid(Uuid::now_v7()),
        turn_mail(sent_token),
        at(0),
    );
    store.enqueue_mail(&sent).await.unwrap();
    let holder = LeaseToken::from_uuid(Uuid::now_v7());
    let claim = ClaimRequest {
        token: holder,
        now: at(1),
        lease: TimeDelta::seconds(60),
        limit: 10,
    };
    assert_eq!(store.claim_mail(&claim).await.unwrap().len(), 1);
    // Delivered as an earlier version wrote it: whole.
    store
        .finish_mail_attempt(sent.id, holder, None, MailNext::Sent, at(2))
        .await
        .unwrap();
    let pending = MailDelivery::new(
        MailId::from_uuid(Uuid::now_v7()),
        turn_mail(pending_token),
        at(3),
    );
    store.enqueue_mail(&pending).await.unwrap();
    let inbound = |key: &str| {
        InboundMail::new(
            InboundMailId::from_uuid(Uuid::now_v7()),
            key.to_owned(),
            format!("To: orders+{sent_token}@galaxy.example\r\n\r\nmove 1 2\r\n").into_bytes(),
            Some("ann@example.org".to_owned()),
            vec![format!("orders+{sent_token}@galaxy.example")],
            at(4),
        )
    };
    let (handled, waiting) = (inbound("handled"), inbound("waiting"));
    store.insert_inbound(&handled).await.unwrap();
    store.insert_inbound(&waiting).await.unwrap();
    // Handled as an earlier version wrote it: the message kept.
    sqlx::query(
        "UPDATE inbound_mail SET status = 'done', outcome = 'answered', detail = 'accepted' \
         WHERE id = $1",
    )
    .bind(handled.id.as_uuid())
    .execute(&pool)
    .await
    .unwrap();

    migrate(&pool).await.expect("0031 on the older schema");
    let kept = store.get_mail(sent.id).await.unwrap();
    assert!(!format!("{kept:?}").contains(sent_token), "{kept:?}");
    let expected = turn_mail(sent_token).redacted().unwrap();
    assert_eq!(
        (
            &kept.mail.subject,
            &kept.mail.text_body,
            &kept.mail.html_body,
            &kept.mail.extras.reply_to
        ),
        (
            &expected.subject,
            &expected.text_body,
            &expected.html_body,
            &expected.reply_to
        ),
        "what the mail worker now keeps"
    );
    assert_eq!(
        store.get_mail(pending.id).await.unwrap().mail,
        pending.mail,
        "not sent yet: whole"
    );
    let handled = store.get_inbound(handled.id).await.unwrap();
    assert!(
        handled.raw.is_empty() && handled.envelope_to.is_empty(),
        "{handled:?}"
    );
    assert_eq!(handled.dedupe_key, "handled");
    assert_eq!(store.get_inbound(waiting.id).await.unwrap(), waiting);
    pool.close().await;
    dbs.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_schema_newer_than_the_binary_refuses_start_up() {
    let dbs = databases().await;
    let pool = dbs
        .pool(dbs.migrated_database().await.unwrap())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999001, 'from a newer release', true, '\\x00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let error = migrate(&pool)
        .await
        .expect_err("a newer schema must be refused");
    let message = error.to_string();
    match error {
        SetupError::UnknownMigrations {
            unknown,
            latest_known,
        } => {
            assert_eq!(unknown, vec![9_999_001]);
            assert_eq!(Some(&latest_known), known_versions().last());
        }
        other => panic!("expected UnknownMigrations, got {other:?}"),
    }
    assert!(
        message.contains("9999001") && message.contains("newer than this binary"),
        "{message}"
    );
    pool.close().await;
    dbs.cleanup().await.unwrap();
}

/// The SQLSTATE of a failed raw statement.
async fn sqlstate(pool: &PgPool, sql: &'static str) -> String {
    let error = sqlx::raw_sql(sql).execute(pool).await.expect_err(sql);
    error
        .as_database_error()
        .and_then(|e| e.code().map(|c| c.into_owned()))
        .unwrap_or_else(|| panic!("not a database error: {error}"))
}

#[tokio::test]
async fn the_database_itself_holds_the_invariants() {
    let dbs = databases().await;
    let store = dbs.store().await.unwrap();
    let pool = store.pool();
    let game = "INSERT INTO games VALUES ('00000000-0000-0000-0000-000000000001', \
        '00000000-0000-0000-0000-000000000002', 'Game', 2, 3, now(), '0 18 * * *', \
        'reference', false, 'public', 'draft', 0, now(), now())";
    sqlx::raw_sql(game)
        .execute(pool)
        .await
        .expect("a valid game row");
    let cases: [(&'static str, &str); 6] = [
        ("UPDATE games SET status = 'Running'", "23514"),
        ("UPDATE games SET approved_count = 4", "23514"),
        ("UPDATE games SET min_players = 5", "23514"),
        (
            "INSERT INTO applications VALUES (gen_random_uuid(), gen_random_uuid(), \
             gen_random_uuid(), 'Zorg', 'pending', now(), NULL)",
            "23503",
        ),
        (
            "INSERT INTO mail_attempts (mail_id, number, outcome, detail, at) \
             VALUES (gen_random_uuid(), 1, 'delivered', '', now())",
            "23514",
        ),
        (
            "INSERT INTO runtime_jobs VALUES (gen_random_uuid(), gen_random_uuid(), 'start', \
             'k', 'queued', 0, now(), gen_random_uuid(), NULL, NULL, now(), now())",
            "23514",
        ),
    ];
    for (sql, code) in cases {
        assert_eq!(sqlstate(pool, sql).await, code, "{sql}");
    }
    let user = "INSERT INTO users VALUES (gen_random_uuid(), 'a@example.org', 'a', 'en', \
        'unknown', '{player}', 'active', NULL, 5, true, true, now(), now())";
    sqlx::raw_sql(user).execute(pool).await.expect("first user");
    assert_eq!(
        sqlstate(pool, user).await,
        "23505",
        "same normalised e-mail"
    );
    dbs.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_runtime_transition_is_recorded_once() {
    let dbs = databases().await;
    let store = Arc::new(dbs.store().await.unwrap());
    let record = RuntimeRecord::new(
        GameId::from_uuid(Uuid::now_v7()),
        EngineName::reference(),
        at(0),
    );
    store.insert_record(&record).await.unwrap();
    let racers: Vec<_> = (0..20)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .update_record_status(
                        record.game_id,
                        RuntimeStatus::Pending,
                        RuntimeStatus::Starting,
                        at(1),
                    )
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::Conflict { .. }) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(won, 1);
    let history: Vec<(String, String)> =
        sqlx::query_as("SELECT from_status, to_status FROM runtime_transitions WHERE game_id = $1")
            .bind(record.game_id.as_uuid())
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(history, vec![("pending".to_owned(), "starting".to_owned())]);
    dbs.cleanup().await.unwrap();
}

fn mail(i: usize) -> MailDelivery {
    let outgoing = OutgoingMail {
        idempotency_key: format!("bench-{i}"),
        to: Email::parse(&format!("p{i}@example.org")).unwrap(),
        kind: "turn_completed".to_owned(),
        locale: Locale::default(),
        subject: "Turn".to_owned(),
        text_body: "Your report".to_owned(),
        html_body: None,
        extras: Default::default(),
    };
    MailDelivery::new(MailId::from_uuid(Uuid::now_v7()), outgoing, at(0))
}

/// A claim of up to 3 items at `at(10)` for a minute.
fn claim_of_three(token: LeaseToken) -> ClaimRequest {
    ClaimRequest {
        token,
        now: at(10),
        lease: TimeDelta::seconds(60),
        limit: 3,
    }
}

/// `mail_attempts` has no foreign key to cascade a purge (migration 0014): the purges of
/// sent and of dead mail delete the attempts of the mails they delete, and only theirs.
#[tokio::test]
async fn purging_sent_mail_takes_its_attempts_along() {
    let dbs = databases().await;
    let store = dbs.store().await.unwrap();
    let mails: Vec<MailDelivery> = (0..3).map(mail).collect();
    for m in &mails {
        store.enqueue_mail(m).await.unwrap();
    }
    let token = LeaseToken::from_uuid(Uuid::new_v4());
    let claim = claim_of_three(token);
    let claimed = store.claim_mail(&claim).await.unwrap();
    assert_eq!(claimed.len(), 3);
    // The first two are sent (one long ago, one recently), the third fails for good.
    let ends: Vec<_> = claimed
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let (outcome, next, secs) = match i {
                0 => (AttemptOutcome::Sent, MailNext::Sent, 20),
                1 => (AttemptOutcome::Sent, MailNext::Sent, 40),
                _ => (AttemptOutcome::Permanent, MailNext::Dead, 20),
            };
            let attempt = MailAttempt {
                mail_id: m.id,
                number: m.attempts,
                outcome,
                detail: format!("attempt of mail {i}"),
                at: at(secs),
            };
            Finish {
                id: m.id,
                token,
                outcome: MailAttemptEnd {
                    attempt: Some(attempt),
                    next,
                },
                at: at(secs),
            }
        })
        .collect();
    let results = store.finish_mail_attempts(&ends).await.unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let attempts_of = |id: MailId| {
        let pool = store.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM mail_attempts WHERE mail_id = $1")
                .bind(id.as_uuid())
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    for m in &claimed {
        assert_eq!(
            attempts_of(m.id).await,
            1,
            "one attempt each before the purge"
        );
    }

    assert_eq!(store.purge_sent_mail(at(30)).await.unwrap(), 1);
    assert_eq!(
        attempts_of(claimed[0].id).await,
        0,
        "the purged mail's attempt"
    );
    assert_eq!(
        attempts_of(claimed[1].id).await,
        1,
        "sent after the bound: kept"
    );
    assert_eq!(attempts_of(claimed[2].id).await, 1, "not sent: kept");
    assert_eq!(store.purge_dead_mail(at(30)).await.unwrap(), 1);
    assert_eq!(
        attempts_of(claimed[2].id).await,
        0,
        "the dead mail's attempt"
    );
    assert_eq!(attempts_of(claimed[1].id).await, 1, "sent: kept");
    let orphans: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM mail_attempts a \
         WHERE NOT EXISTS (SELECT 1 FROM mail_deliveries m WHERE m.id = a.mail_id)",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(orphans, 0);
    dbs.cleanup().await.unwrap();
}

/// One claimer: claims batches of 3 until the queue is empty, completing each mail.
async fn drain(store: Arc<PgStore>) -> Vec<MailId> {
    let token = LeaseToken::from_uuid(Uuid::new_v4());
    let claim = claim_of_three(token);
    let mut mine = Vec::new();
    loop {
        let batch = store.claim_mail(&claim).await.unwrap();
        if batch.is_empty() {
            return mine;
        }
        for m in batch {
            store
                .finish_mail_attempt(m.id, token, None, MailNext::Sent, at(11))
                .await
                .unwrap();
            mine.push(m.id);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_claimers_never_share_a_mail() {
    let dbs = databases().await;
    let store = Arc::new(dbs.store().await.unwrap());
    for i in 0..300 {
        store.enqueue_mail(&mail(i)).await.unwrap();
    }
    let claimers: Vec<_> = (0..16)
        .map(|_| tokio::spawn(drain(Arc::clone(&store))))
        .collect();
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let unique: HashSet<MailId> = all.iter().copied().collect();
    assert_eq!((all.len(), unique.len()), (300, 300));
    dbs.cleanup().await.unwrap();
}

/// Ready rows of `table`: how many, and their earliest and latest due instants.
async fn ready_rows(pool: &PgPool, table: &str) -> (i64, Option<Timestamp>, Option<Timestamp>) {
    let sql = format!("SELECT count(*), min(due), max(due) FROM {table}_ready");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The queues' design (`queue.rs`, migration 0013): a claim and a finish update the item
/// row in place (a HOT update: no index of the item table reads what they change), and the
/// ready table holds exactly the items a claim may still take, at the instant it may.
#[tokio::test]
async fn queue_items_are_updated_in_place_and_their_ready_rows_follow() {
    let dbs = databases().await;
    // One connection: the statistics read at the end are this session's, flushed on request.
    let mut settings = ConnectOptions::default();
    settings.max_connections = 1;
    let pool = connect_with(dbs.migrated_database().await.unwrap(), &settings)
        .await
        .unwrap();
    let store = PgStore::new(pool.clone());
    // Six items per queue: small enough that every row version fits on the first page.
    for queue in SeedQueue::ALL {
        queue.seed(&pool, 6, at(0)).await.unwrap();
        assert_eq!(ready_rows(&pool, queue.table()).await.0, 6, "{queue:?}");
    }
    let claim = ClaimRequest {
        token: LeaseToken::from_uuid(Uuid::new_v4()),
        now: at(10),
        lease: TimeDelta::seconds(60),
        limit: 10,
    };
    let finish = |i: usize| i.is_multiple_of(2);
    let (token, done_at, again) = (claim.token, at(11), at(100));

    let jobs = store.claim_jobs(&claim).await.unwrap();
    assert_eq!(jobs.len(), 6);
    // Claimed items wait in the ready table until their lease lapses.
    assert_eq!(
        ready_rows(&pool, "runtime_jobs").await,
        (6, Some(at(70)), Some(at(70)))
    );
    let ends: Vec<_> = jobs
        .iter()
        .enumerate()
        .map(|(i, job)| Finish {
            id: job.id,
            token,
            outcome: if finish(i) {
                JobOutcome::Succeeded
            } else {
                JobOutcome::Requeue(again)
            },
            at: done_at,
        })
        .collect();
    let results = store.complete_jobs(&ends).await.unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let mails = store.claim_mail(&claim).await.unwrap();
    assert_eq!(mails.len(), 6);
    let ends: Vec<_> = mails
        .iter()
        .enumerate()
        .map(|(i, mail)| Finish {
            id: mail.id,
            token,
            outcome: MailAttemptEnd {
                attempt: None,
                next: if finish(i) {
                    MailNext::Sent
                } else {
                    MailNext::Retry(again)
                },
            },
            at: done_at,
        })
        .collect();
    let results = store.finish_mail_attempts(&ends).await.unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let routes = store.claim_routes(&claim).await.unwrap();
    assert_eq!(routes.len(), 6);
    let ends: Vec<_> = routes
        .iter()
        .enumerate()
        .map(|(i, route)| Finish {
            id: route.id,
            token,
            outcome: if finish(i) {
                RouteNext::Delivered
            } else {
                RouteNext::Retry {
                    at: again,
                    error: "gateway away".to_owned(),
                }
            },
            at: done_at,
        })
        .collect();
    let results = store.finish_routes(&ends).await.unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    // Done items left the ready table; the others wait there for their next attempt.
    for queue in SeedQueue::ALL {
        assert_eq!(
            ready_rows(&pool, queue.table()).await,
            (3, Some(again), Some(again)),
            "{queue:?}"
        );
    }
    // Twelve updates per item table (six claims, six finishes), every one in place.
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(&pool)
        .await
        .unwrap();
    let tables: Vec<String> = SeedQueue::ALL
        .iter()
        .map(|q| q.table().to_owned())
        .collect();
    let mut counts: Vec<(String, i64, i64)> = Vec::new();
    for _ in 0..300 {
        // A new transaction each time, so the statistics snapshot is fresh.
        counts = sqlx::query_as(
            "SELECT relname::text, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables \
             WHERE relname = ANY($1) ORDER BY relname",
        )
        .bind(&tables)
        .fetch_all(&pool)
        .await
        .unwrap();
        if counts.len() == 3 && counts.iter().all(|(_, updated, _)| *updated >= 12) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(counts.len(), 3, "{counts:?}");
    for (table, updated, hot) in &counts {
        assert_eq!((*updated, *hot), (12, 12), "{table}: {counts:?}");
    }
    pool.close().await;
    dbs.cleanup().await.unwrap();
}

/// One worker whose leases lapse at once: it claims batches with a lease of a millisecond
/// (so other workers take over its items while it finishes them) and finishes each batch
/// as sent; a lost lease is a `Conflict`, anything else (a deadlock) fails the test.
/// Returns how many finishes it won and lost.
async fn hurried_worker(store: Arc<PgStore>) -> (usize, usize) {
    let (mut won, mut lost) = (0, 0);
    loop {
        let claim = ClaimRequest {
            token: LeaseToken::from_uuid(Uuid::new_v4()),
            now: Utc::now(),
            lease: TimeDelta::milliseconds(1),
            limit: 5,
        };
        let batch = store.claim_mail(&claim).await.unwrap();
        if batch.is_empty() {
            return (won, lost);
        }
        let ends: Vec<_> = batch
            .iter()
            .map(|mail| Finish {
                id: mail.id,
                token: claim.token,
                outcome: MailAttemptEnd {
                    attempt: None,
                    next: MailNext::Sent,
                },
                at: Utc::now(),
            })
            .collect();
        for result in store.finish_mail_attempts(&ends).await.unwrap() {
            match result {
                Ok(_) => won += 1,
                Err(StoreError::Conflict { .. }) => lost += 1,
                Err(other) => panic!("a finish failed: {other}"),
            }
        }
    }
}

/// Claims that take over lapsed leases race the finishes of their first holders (the case
/// the lock order of `queue.rs` is for): no deadlock, every mail is sent exactly once as far
/// as the store is concerned, and nothing is left in the ready table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_racing_finishes_of_lapsed_leases_never_deadlock() {
    let dbs = databases().await;
    let store = Arc::new(dbs.store().await.unwrap());
    let due = Utc::now() - TimeDelta::seconds(1);
    SeedQueue::Mail.seed(store.pool(), 400, due).await.unwrap();
    let workers: Vec<_> = (0..8)
        .map(|_| tokio::spawn(hurried_worker(Arc::clone(&store))))
        .collect();
    let (mut won, mut lost) = (0, 0);
    for worker in workers {
        let (w, l) = worker.await.unwrap();
        (won, lost) = (won + w, lost + l);
    }
    // How often a lease was taken over while its holder finished depends on timing.
    eprintln!("finishes won {won}, lost to a claim that took over the lease {lost}");
    assert_eq!(won, 400, "each mail finished once");
    let counts = store.count_mail_by_status().await.unwrap();
    for (status, count) in &counts {
        let expected = if *status == MailStatus::Sent { 400 } else { 0 };
        assert_eq!(*count, expected, "{counts:?}");
    }
    assert_eq!(ready_rows(store.pool(), "mail_deliveries").await.0, 0);
    dbs.cleanup().await.unwrap();
}

/// Upgrading a database with work in its queues: migration 0013 gives every unfinished
/// item a ready row (due at its due time, or at its lease's expiry while leased) and none
/// to finished items, so no mail, route, job or inbound message is stranded by the upgrade.
#[tokio::test]
async fn upgrading_to_ready_tables_keeps_every_unfinished_item_claimable() {
    let dbs = databases().await;
    let pool = dbs.pool(dbs.empty_database().await.unwrap()).await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    let (before, ready): (Vec<_>, Vec<_>) = files.into_iter().partition(|path| {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        name.as_str() < "0013"
    });
    for path in &before {
        let sql = std::fs::read_to_string(path).unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
    }
    // Items in every status, as a database of 0012 holds them.
    sqlx::raw_sql(
        "INSERT INTO mail_deliveries (id, idempotency_key, to_email, kind, locale, subject, \
         text_body, status, attempts, next_attempt_at, lease_token, lease_until, created_at, \
         updated_at, done) VALUES \
         ('00000000-0000-0000-0000-000000000001', 'm1', 'a@example.org', 'k', 'en', 's', 'b', \
          'pending', 0, '2030-01-01 00:00:05+00', NULL, NULL, '2030-01-01', '2030-01-01', false), \
         ('00000000-0000-0000-0000-000000000002', 'm2', 'a@example.org', 'k', 'en', 's', 'b', \
          'sending', 1, '2030-01-01 00:00:05+00', gen_random_uuid(), '2030-01-01 00:01:10+00', \
          '2030-01-01', '2030-01-01', false), \
         ('00000000-0000-0000-0000-000000000003', 'm3', 'a@example.org', 'k', 'en', 's', 'b', \
          'retrying', 1, '2030-01-01 00:01:40+00', NULL, NULL, '2030-01-01', '2030-01-01', false), \
         ('00000000-0000-0000-0000-000000000004', 'm4', 'a@example.org', 'k', 'en', 's', 'b', \
          'sent', 1, '2030-01-01', NULL, NULL, '2030-01-01', '2030-01-01', true), \
         ('00000000-0000-0000-0000-000000000005', 'm5', 'a@example.org', 'k', 'en', 's', 'b', \
          'dead', 8, '2030-01-01', NULL, NULL, '2030-01-01', '2030-01-01', true); \
         INSERT INTO runtime_jobs (id, game_id, kind, idempotency_key, status, attempts, \
         run_after, lease_token, lease_until, created_at, updated_at) VALUES \
         ('00000000-0000-0000-0000-000000000011', gen_random_uuid(), 'start', 'j1', 'queued', 0, \
          '2030-01-01 00:00:05+00', NULL, NULL, '2030-01-01', '2030-01-01'), \
         ('00000000-0000-0000-0000-000000000012', gen_random_uuid(), 'start', 'j2', 'running', 1, \
          '2030-01-01', gen_random_uuid(), '2030-01-01 00:01:10+00', '2030-01-01', '2030-01-01'), \
         ('00000000-0000-0000-0000-000000000013', gen_random_uuid(), 'stop', 'j3', 'succeeded', 1, \
          '2030-01-01', NULL, NULL, '2030-01-01', '2030-01-01'), \
         ('00000000-0000-0000-0000-000000000014', gen_random_uuid(), 'stop', 'j4', 'failed', 3, \
          '2030-01-01', NULL, NULL, '2030-01-01', '2030-01-01'); \
         INSERT INTO notification_intents (id, kind, idempotency_key, recipients, payload, \
         created_at) VALUES ('00000000-0000-0000-0000-000000000020', 'turn_completed', 'i', \
         '{}', '{}', '2030-01-01'); \
         INSERT INTO notification_routes (id, intent_id, user_id, channel, status, attempts, \
         next_attempt_at, lease_token, lease_until, created_at, updated_at) VALUES \
         ('00000000-0000-0000-0000-000000000021', '00000000-0000-0000-0000-000000000020', \
          gen_random_uuid(), 'push', 'pending', 0, '2030-01-01 00:00:05+00', NULL, NULL, \
          '2030-01-01', '2030-01-01'), \
         ('00000000-0000-0000-0000-000000000022', '00000000-0000-0000-0000-000000000020', \
          gen_random_uuid(), 'push', 'dispatching', 1, '2030-01-01', gen_random_uuid(), \
          '2030-01-01 00:01:10+00', '2030-01-01', '2030-01-01'), \
         ('00000000-0000-0000-0000-000000000023', '00000000-0000-0000-0000-000000000020', \
          gen_random_uuid(), 'email', 'delivered', 1, '2030-01-01', NULL, NULL, '2030-01-01', \
          '2030-01-01'), \
         ('00000000-0000-0000-0000-000000000024', '00000000-0000-0000-0000-000000000020', \
          gen_random_uuid(), 'email', 'dead_letter', 8, '2030-01-01', NULL, NULL, '2030-01-01', \
          '2030-01-01'); \
         INSERT INTO inbound_mail (id, dedupe_key, raw, envelope_to, status, outcome, attempts, \
         lease_token, lease_until, received_at, created_at, updated_at) VALUES \
         ('00000000-0000-0000-0000-000000000031', 'd1', '\\x00', '{}', 'received', NULL, 0, \
          NULL, NULL, '2030-01-01 00:00:05+00', '2030-01-01', '2030-01-01'), \
         ('00000000-0000-0000-0000-000000000032', 'd2', '\\x00', '{}', 'processing', NULL, 1, \
          gen_random_uuid(), '2030-01-01 00:01:10+00', '2030-01-01', '2030-01-01', '2030-01-01'), \
         ('00000000-0000-0000-0000-000000000033', 'd3', '\\x00', '{}', 'done', 'answered', 1, \
          NULL, NULL, '2030-01-01', '2030-01-01', '2030-01-01');",
    )
    .execute(&pool)
    .await
    .unwrap();
    for path in &ready {
        let sql = std::fs::read_to_string(path).unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
    }
    for (table, expected) in [
        (
            "mail_deliveries",
            vec![(1, at(5)), (2, at(70)), (3, at(100))],
        ),
        ("runtime_jobs", vec![(0x11, at(5)), (0x12, at(70))]),
        ("notification_routes", vec![(0x21, at(5)), (0x22, at(70))]),
        ("inbound_mail", vec![(0x31, at(5)), (0x32, at(70))]),
    ] {
        let sql = format!("SELECT id, due FROM {table}_ready ORDER BY id");
        let rows: Vec<(Uuid, Timestamp)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .unwrap();
        let expected: Vec<(Uuid, Timestamp)> = expected
            .into_iter()
            .map(|(n, due)| (Uuid::from_u128(n), due))
            .collect();
        assert_eq!(rows, expected, "{table}");
    }
    pool.close().await;
    dbs.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_backup_hold_keeps_turns_off_until_it_lapses_and_a_lapse_is_seen() {
    use galaxy_postgres::backup::{hold_turns, release_turns, renew_hold};
    let dbs = databases().await;
    let store = dbs.store().await.unwrap();
    let mut record = RuntimeRecord::new(
        GameId::from_uuid(Uuid::now_v7()),
        EngineName::reference(),
        Utc::now(),
    );
    record.status = RuntimeStatus::Running;
    store.insert_record(&record).await.unwrap();
    let game = record.game_id;
    let (hold, scheduler) = (Uuid::now_v7(), LeaseToken::from_uuid(Uuid::now_v7()));
    let claim = || ClaimRequest {
        token: scheduler,
        now: Utc::now(),
        lease: TimeDelta::seconds(60),
        limit: 1,
    };

    let (held, busy) = hold_turns(store.pool(), hold, Utc::now() + TimeDelta::seconds(60))
        .await
        .unwrap();
    assert_eq!((held, busy), (vec![game.as_uuid()], 0));
    assert!(matches!(
        store.claim_turn(game, &claim()).await,
        Err(StoreError::Conflict { .. })
    ));
    // Renewed while held: still one.
    let later = Utc::now() + TimeDelta::seconds(120);
    assert_eq!(renew_hold(store.pool(), hold, later).await.unwrap(), 1);
    // A renewal that came too late: the hold lapsed, the scheduler took the game (a turn
    // may run), and the next renewal holds fewer games than were held.
    let past = Utc::now() - TimeDelta::seconds(1);
    assert_eq!(renew_hold(store.pool(), hold, past).await.unwrap(), 1);
    store.claim_turn(game, &claim()).await.unwrap();
    assert_eq!(renew_hold(store.pool(), hold, later).await.unwrap(), 0);
    assert_eq!(release_turns(store.pool(), hold).await.unwrap(), 0);
    let taken = store.get_record(game).await.unwrap();
    assert_eq!(taken.turn_lease.map(|l| l.token), Some(scheduler));
}

#[tokio::test]
async fn purges_run_batch_after_batch_until_the_history_is_gone() {
    use galaxy_core::ports::{ChallengeStore, SessionStore};
    let dbs = databases().await;
    let store = dbs.store().await.unwrap();
    let batch = galaxy_postgres::PURGE_BATCH;
    let n = 2 * batch + 500;
    // Challenges expired before the bound, and one after it.
    sqlx::query(
        "INSERT INTO login_challenges (id, email, code_hash, client_ip, status, \
         failed_attempts, max_attempts, issued_at, expires_at) \
         SELECT gen_random_uuid(), 'p' || i || '@example.com', sha256(i::text::bytea), \
         '127.0.0.1', 'issued', 0, 5, $1, $1 FROM generate_series(1, $2) AS i",
    )
    .bind(at(0))
    .bind(n)
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO login_challenges (id, email, code_hash, client_ip, status, \
         failed_attempts, max_attempts, issued_at, expires_at) \
         VALUES (gen_random_uuid(), 'late@example.com', sha256('x'::bytea), '127.0.0.1', \
         'issued', 0, 5, $1, $1)",
    )
    .bind(at(100))
    .execute(store.pool())
    .await
    .unwrap();
    assert_eq!(
        store.purge_challenges(at(50)).await.unwrap(),
        u64::try_from(n).unwrap()
    );
    // Sessions: half expired, half revoked (and still unexpired), and live ones.
    sqlx::query(
        "INSERT INTO sessions (id, user_id, token_hash, status, created_at, expires_at, \
         revoked_at) \
         SELECT gen_random_uuid(), gen_random_uuid(), sha256(i::text::bytea), \
         CASE WHEN i % 3 = 1 THEN 'revoked' ELSE 'active' END, $1, \
         CASE WHEN i % 3 = 0 THEN $1 ELSE $2 END, \
         CASE WHEN i % 3 = 1 THEN $1 END \
         FROM generate_series(1, $3) AS i",
    )
    .bind(at(0))
    .bind(at(1000))
    .bind(3 * batch)
    .execute(store.pool())
    .await
    .unwrap();
    // i % 3 == 0: expired; == 1: revoked; == 2: live.
    assert_eq!(
        store.purge_sessions(at(50)).await.unwrap(),
        u64::try_from(2 * batch).unwrap()
    );
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(left, batch, "the live ones stay");
    let challenges: i64 = sqlx::query_scalar("SELECT count(*) FROM login_challenges")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(challenges, 1, "the one expiring after the bound stays");

    // Sent mail, created in runs of 700 at the same instant (so that batches end inside
    // a run: each batch continues from the last one's key, ties included), every third
    // one sent after the bound (it stays).
    sqlx::query(
        "INSERT INTO mail_deliveries (id, idempotency_key, to_email, kind, locale, subject, \
         text_body, status, attempts, next_attempt_at, created_at, updated_at, sent_at, \
         extras) \
         SELECT gen_random_uuid(), 'purge-' || i, 'p@example.com', 'login_code', 'en', 's', \
         'b', 'sent', 1, $1, $1 + (i / 700) * interval '1 second', $1, \
         CASE WHEN i % 3 = 0 THEN $2 ELSE $1 END, '{}'::jsonb \
         FROM generate_series(1, $3) AS i",
    )
    .bind(at(0))
    .bind(at(100))
    .bind(n)
    .execute(store.pool())
    .await
    .unwrap();
    let late = n / 3;
    assert_eq!(
        store.purge_sent_mail(at(50)).await.unwrap(),
        u64::try_from(n - late).unwrap()
    );
    let mails: i64 = sqlx::query_scalar("SELECT count(*) FROM mail_deliveries")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mails, late, "the mail sent after the bound stays");
    dbs.cleanup().await.unwrap();
}
