//! [`TurnArchiveStore`] on `played_turns` and `turn_reports`, [`OrdersStore`] on
//! `orders_submissions` and `orders_leases`.
//!
//! Reports and orders live in `json` columns and travel as text (`$n::json` in,
//! `::text` out): `jsonb` would refuse a `\u0000` in a string, and an engine's report or a
//! player's plain-text orders may hold anything JSON can.

use async_trait::async_trait;
use galaxy_core::domain::lease::Lease;
use galaxy_core::domain::play::{OrdersSubmission, PlayedTurn, Standing, TurnReport};
use galaxy_core::domain::{GameId, LeaseToken, SubmissionId, Timestamp, UserId};
use galaxy_core::ports::{OrdersCount, OrdersStore, StoreError, TurnArchiveStore};
use sqlx::postgres::PgRow;
use sqlx::types::Json;

use crate::PgStore;
use crate::error::{corrupt, db};
use crate::rows::RowExt;

const TURN: &str = "played turn";
const REPORT: &str = "turn report";
const SUBMISSION: &str = "orders submission";
const ORDERS_LEASE: &str = "orders lease";

fn json_text(entity: &'static str, value: &serde_json::Value) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| corrupt(entity, "json", e.to_string()))
}

fn json_col(
    row: &PgRow,
    entity: &'static str,
    column: &'static str,
) -> Result<serde_json::Value, StoreError> {
    let text: String = row.col(entity, column)?;
    serde_json::from_str(&text).map_err(|e| corrupt(entity, column, e.to_string()))
}

fn turn_from_row(row: &PgRow) -> Result<PlayedTurn, StoreError> {
    let Json(standings): Json<Vec<Standing>> = row.col(TURN, "standings")?;
    Ok(PlayedTurn {
        game_id: GameId::from_uuid(row.col(TURN, "game_id")?),
        turn: row.col_u32(TURN, "turn")?,
        played_at: row.col(TURN, "played_at")?,
        finished: row.col(TURN, "finished")?,
        winner: row.col(TURN, "winner")?,
        standings,
    })
}

fn submission_from_row(row: &PgRow) -> Result<OrdersSubmission, StoreError> {
    let Json(errors): Json<Vec<String>> = row.col(SUBMISSION, "errors")?;
    Ok(OrdersSubmission {
        id: SubmissionId::from_uuid(row.col(SUBMISSION, "id")?),
        game_id: GameId::from_uuid(row.col(SUBMISSION, "game_id")?),
        race: row.col(SUBMISSION, "race")?,
        user_id: UserId::from_uuid(row.col(SUBMISSION, "user_id")?),
        turn: row.col_u32(SUBMISSION, "turn")?,
        submitted_at: row.col(SUBMISSION, "submitted_at")?,
        size: row.col_u64(SUBMISSION, "size")?,
        accepted: row.col(SUBMISSION, "accepted")?,
        errors,
        orders: json_col(row, SUBMISSION, "orders_text")?,
    })
}

/// A race's submissions for a turn, newest first (`$1` game, `$2` turn, `$3` race): one
/// text for the list and for the one in force (`LIMIT 1`), both read in the order of the
/// index `orders_submissions_by_turn`.
macro_rules! orders_of_turn_sql {
    () => {
        "SELECT id, game_id, race, user_id, turn, submitted_at, size, accepted, errors, \
         orders::text AS orders_text FROM orders_submissions \
         WHERE game_id = $1 AND turn = $2 AND race = $3 \
         ORDER BY submitted_at DESC, seq DESC"
    };
}

#[async_trait]
impl TurnArchiveStore for PgStore {
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn archive_turn(
        &self,
        turn: &PlayedTurn,
        reports: &[TurnReport],
    ) -> Result<bool, StoreError> {
        turn.check_reports(reports).map_err(StoreError::internal)?;
        let mut tx = self.pool.begin().await.map_err(db(TURN))?;
        // The first archive of a turn wins; a replay (or a concurrent second archive,
        // which waits on the primary key) stores nothing.
        let inserted = sqlx::query(
            "INSERT INTO played_turns (game_id, turn, played_at, finished, winner, standings) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (game_id, turn) DO NOTHING",
        )
        .bind(turn.game_id.as_uuid())
        .bind(i64::from(turn.turn))
        .bind(turn.played_at)
        .bind(turn.finished)
        .bind(turn.winner.as_deref())
        .bind(Json(&turn.standings))
        .execute(&mut *tx)
        .await
        .map_err(db(TURN))?
        .rows_affected()
            == 1;
        if !inserted {
            tx.rollback().await.map_err(db(TURN))?;
            return Ok(false);
        }
        for report in reports {
            sqlx::query(
                "INSERT INTO turn_reports (game_id, turn, race, report) \
                 VALUES ($1, $2, $3, $4::json)",
            )
            .bind(report.game_id.as_uuid())
            .bind(i64::from(report.turn))
            .bind(&report.race)
            .bind(json_text(REPORT, &report.report)?)
            .execute(&mut *tx)
            .await
            .map_err(db(REPORT))?;
        }
        tx.commit().await.map_err(db(TURN))?;
        Ok(true)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn list_turns(&self, game_id: GameId) -> Result<Vec<PlayedTurn>, StoreError> {
        let rows = sqlx::query("SELECT * FROM played_turns WHERE game_id = $1 ORDER BY turn")
            .bind(game_id.as_uuid())
            .fetch_all(&self.pool)
            .await
            .map_err(db(TURN))?;
        rows.iter().map(turn_from_row).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn latest_turn(&self, game_id: GameId) -> Result<Option<PlayedTurn>, StoreError> {
        let row =
            sqlx::query("SELECT * FROM played_turns WHERE game_id = $1 ORDER BY turn DESC LIMIT 1")
                .bind(game_id.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(db(TURN))?;
        row.as_ref().map(turn_from_row).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn unannounced_turns(
        &self,
        after: Option<PlayedTurn>,
        limit: u32,
    ) -> Result<Vec<PlayedTurn>, StoreError> {
        // Both walk the partial index `played_turns_unannounced` in its order, the second
        // from the key `after` (a row comparison, which is an index bound; an `$1 IS NULL
        // OR ...` in one statement would not be one in a generic plan). The limit is
        // bound last, so it is `$1` of the first and `$4` of the second.
        let query = match &after {
            None => sqlx::query(
                "SELECT * FROM played_turns WHERE announced_at IS NULL \
                 ORDER BY played_at, game_id, turn LIMIT $1",
            ),
            Some(after) => sqlx::query(
                "SELECT * FROM played_turns WHERE announced_at IS NULL \
                 AND (played_at, game_id, turn) > ($1, $2, $3) \
                 ORDER BY played_at, game_id, turn LIMIT $4",
            )
            .bind(after.played_at)
            .bind(after.game_id.as_uuid())
            .bind(i64::from(after.turn)),
        };
        let rows = query
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db(TURN))?;
        rows.iter().map(turn_from_row).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn mark_announced(
        &self,
        game_id: GameId,
        turn: u32,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        // `coalesce` keeps the first announcement: a repeat changes nothing.
        let found = sqlx::query(
            "UPDATE played_turns SET announced_at = coalesce(announced_at, $3) \
             WHERE game_id = $1 AND turn = $2",
        )
        .bind(game_id.as_uuid())
        .bind(i64::from(turn))
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(db(TURN))?
        .rows_affected();
        if found == 0 {
            return Err(StoreError::not_found(TURN, format!("{game_id}/{turn}")));
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn get_report(
        &self,
        game_id: GameId,
        turn: u32,
        race: &str,
    ) -> Result<TurnReport, StoreError> {
        let row = sqlx::query(
            "SELECT report::text AS report_text FROM turn_reports \
             WHERE game_id = $1 AND turn = $2 AND race = $3",
        )
        .bind(game_id.as_uuid())
        .bind(i64::from(turn))
        .bind(race)
        .fetch_optional(&self.pool)
        .await
        .map_err(db(REPORT))?
        .ok_or_else(|| StoreError::not_found(REPORT, format!("{race}/{turn}")))?;
        Ok(TurnReport {
            game_id,
            turn,
            race: race.to_owned(),
            report: json_col(&row, REPORT, "report_text")?,
        })
    }
}

#[async_trait]
impl OrdersStore for PgStore {
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn lease_orders(
        &self,
        game_id: GameId,
        race: &str,
        lease: Lease,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        // One statement: a free, lapsed or own lease is taken; a held one is left and no
        // row comes back.
        let taken = sqlx::query(
            "INSERT INTO orders_leases (game_id, race, token, until) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (game_id, race) DO UPDATE SET token = EXCLUDED.token, \
                 until = EXCLUDED.until \
             WHERE orders_leases.until <= $5 OR orders_leases.token = EXCLUDED.token \
             RETURNING token",
        )
        .bind(game_id.as_uuid())
        .bind(race)
        .bind(lease.token.as_uuid())
        .bind(lease.until)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(db(ORDERS_LEASE))?;
        Ok(taken.is_some())
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn renew_orders(
        &self,
        game_id: GameId,
        race: &str,
        lease: Lease,
    ) -> Result<bool, StoreError> {
        let renewed = sqlx::query(
            "UPDATE orders_leases SET until = $4 WHERE game_id = $1 AND race = $2 AND token = $3",
        )
        .bind(game_id.as_uuid())
        .bind(race)
        .bind(lease.token.as_uuid())
        .bind(lease.until)
        .execute(&self.pool)
        .await
        .map_err(db(ORDERS_LEASE))?;
        Ok(renewed.rows_affected() == 1)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn release_orders(
        &self,
        game_id: GameId,
        race: &str,
        token: LeaseToken,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM orders_leases WHERE game_id = $1 AND race = $2 AND token = $3")
            .bind(game_id.as_uuid())
            .bind(race)
            .bind(token.as_uuid())
            .execute(&self.pool)
            .await
            .map_err(db(ORDERS_LEASE))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn record_orders(
        &self,
        submission: &OrdersSubmission,
        holder: LeaseToken,
    ) -> Result<(), StoreError> {
        let size = i64::try_from(submission.size)
            .map_err(|_| corrupt(SUBMISSION, "size", "larger than a bigint"))?;
        // The lease row is read with a share lock: a submission taking the lapsed lease
        // waits for this insert, and one that took it first leaves no row here (the
        // token is checked again on the row as it is now), so nothing is inserted.
        let inserted = sqlx::query(
            "WITH held AS (SELECT 1 FROM orders_leases \
                 WHERE game_id = $2 AND race = $3 AND token = $11 FOR SHARE) \
             INSERT INTO orders_submissions \
             (id, game_id, race, user_id, turn, submitted_at, size, accepted, errors, orders) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10::json FROM held",
        )
        .bind(submission.id.as_uuid())
        .bind(submission.game_id.as_uuid())
        .bind(&submission.race)
        .bind(submission.user_id.as_uuid())
        .bind(i64::from(submission.turn))
        .bind(submission.submitted_at)
        .bind(size)
        .bind(submission.accepted)
        .bind(Json(&submission.errors))
        .bind(json_text(SUBMISSION, &submission.orders)?)
        .bind(holder.as_uuid())
        .execute(&self.pool)
        .await
        .map_err(db(SUBMISSION))?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::conflict(
                ORDERS_LEASE,
                format!("{}/{}", submission.game_id, submission.race),
                "held by another submission now",
            ));
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn list_orders(
        &self,
        game_id: GameId,
        race: &str,
        turn: u32,
    ) -> Result<Vec<OrdersSubmission>, StoreError> {
        let rows = sqlx::query(orders_of_turn_sql!())
            .bind(game_id.as_uuid())
            .bind(i64::from(turn))
            .bind(race)
            .fetch_all(&self.pool)
            .await
            .map_err(db(SUBMISSION))?;
        rows.iter().map(submission_from_row).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn latest_orders(
        &self,
        game_id: GameId,
        race: &str,
        turn: u32,
    ) -> Result<Option<OrdersSubmission>, StoreError> {
        let row = sqlx::query(concat!(orders_of_turn_sql!(), " LIMIT 1"))
            .bind(game_id.as_uuid())
            .bind(i64::from(turn))
            .bind(race)
            .fetch_optional(&self.pool)
            .await
            .map_err(db(SUBMISSION))?;
        row.as_ref().map(submission_from_row).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn count_orders(
        &self,
        game_id: GameId,
        race: &str,
        turn: u32,
    ) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM orders_submissions \
             WHERE game_id = $1 AND turn = $2 AND race = $3",
        )
        .bind(game_id.as_uuid())
        .bind(i64::from(turn))
        .bind(race)
        .fetch_one(&self.pool)
        .await
        .map_err(db(SUBMISSION))?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn races_with_orders_in(
        &self,
        game_id: GameId,
        turn: u32,
        count: OrdersCount,
    ) -> Result<Vec<String>, StoreError> {
        let sql = match count {
            OrdersCount::Latest => {
                "SELECT race FROM ( \
                     SELECT DISTINCT ON (race) race, accepted FROM orders_submissions \
                     WHERE game_id = $1 AND turn = $2 \
                     ORDER BY race, submitted_at DESC, seq DESC \
                 ) latest WHERE accepted ORDER BY race COLLATE \"C\""
            }
            OrdersCount::PlayedAt(_) => {
                "SELECT DISTINCT race COLLATE \"C\" FROM orders_submissions \
                 WHERE game_id = $1 AND turn = $2 AND accepted AND submitted_at <= $3 \
                 ORDER BY 1"
            }
        };
        let mut query = sqlx::query_scalar(sql)
            .bind(game_id.as_uuid())
            .bind(i64::from(turn));
        if let OrdersCount::PlayedAt(at) = count {
            query = query.bind(at);
        }
        let races: Vec<String> = query.fetch_all(&self.pool).await.map_err(db(SUBMISSION))?;
        Ok(races)
    }
}
