//! The messages of [`PbemStore`](galaxy_core::ports::PbemStore): what races write one
//! another, rate-limited per sender under the sender's race row, the mail notices owed
//! for them and each race's page of them.

use galaxy_core::domain::limit::RateLimit;
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::pbem::RaceMessage;
use galaxy_core::domain::{GameId, MessageId, Timestamp, UserId};
use galaxy_core::ports::StoreError;
use sqlx::postgres::PgRow;

use super::{lock_race, owned};
use crate::PgStore;
use crate::error::db;
use crate::rows::{RowExt, cursor, page_limit, page_of, u32_param};

const MESSAGE: &str = "message";

fn message_from_row(row: &PgRow) -> Result<RaceMessage, StoreError> {
    Ok(RaceMessage {
        id: MessageId::from_uuid(row.col(MESSAGE, "id")?),
        game_id: GameId::from_uuid(row.col(MESSAGE, "game_id")?),
        turn: row.col_u32(MESSAGE, "turn")?,
        sender_user: UserId::from_uuid(row.col(MESSAGE, "sender_user")?),
        sender_race: row.col(MESSAGE, "sender_race")?,
        to_all: row.col(MESSAGE, "to_all")?,
        recipients: row.col(MESSAGE, "recipients")?,
        text: row.col(MESSAGE, "text")?,
        sent_at: row.col(MESSAGE, "sent_at")?,
    })
}

pub(super) async fn post_message(
    store: &PgStore,
    message: &RaceMessage,
    limit: RateLimit,
) -> Result<Option<Timestamp>, StoreError> {
    let mut tx = store.pool.begin().await.map_err(db(MESSAGE))?;
    // The sender's race row serialises their sends, so the count and the insert
    // are one step even with concurrent callers on several replicas.
    // It also holds the race to its player until the message is stored.
    owned(
        lock_race(&mut tx, message.game_id, &message.sender_race).await?,
        message.sender_user,
    )?;
    let seen: Vec<Timestamp> = sqlx::query_scalar(
        "SELECT sent_at FROM race_messages \
         WHERE game_id = $1 AND sender_user = $2 AND sent_at > $3",
    )
    .bind(message.game_id.as_uuid())
    .bind(message.sender_user.as_uuid())
    .bind(limit.window_start(message.sent_at))
    .fetch_all(&mut *tx)
    .await
    .map_err(db(MESSAGE))?;
    if let Some(until) = limit.full_until(message.sent_at, seen.into_iter().map(|t| (t, 1))) {
        return Ok(Some(until));
    }
    sqlx::query(
        "INSERT INTO race_messages (id, game_id, turn, sender_user, sender_race, to_all, \
         recipients, text, sent_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(message.id.as_uuid())
    .bind(message.game_id.as_uuid())
    .bind(u32_param(message.turn))
    .bind(message.sender_user.as_uuid())
    .bind(&message.sender_race)
    .bind(message.to_all)
    .bind(&message.recipients)
    .bind(&message.text)
    .bind(message.sent_at)
    .execute(&mut *tx)
    .await
    .map_err(db(MESSAGE))?;
    tx.commit().await.map_err(db(MESSAGE))?;
    Ok(None)
}

pub(super) async fn owed_message_notices(
    store: &PgStore,
    limit: u32,
) -> Result<Vec<RaceMessage>, StoreError> {
    let rows =
        sqlx::query("SELECT * FROM race_messages WHERE NOT noticed ORDER BY sent_at, seq LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(&store.pool)
            .await
            .map_err(db(MESSAGE))?;
    rows.iter().map(message_from_row).collect()
}

pub(super) async fn message_noticed(store: &PgStore, id: MessageId) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE race_messages SET noticed = true WHERE id = $1")
        .bind(id.as_uuid())
        .execute(&store.pool)
        .await
        .map_err(db(MESSAGE))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found(MESSAGE, id));
    }
    Ok(())
}

pub(super) async fn list_messages(
    store: &PgStore,
    game_id: GameId,
    race: &str,
    page: &PageRequest,
) -> Result<Page<RaceMessage>, StoreError> {
    let (after_at, after_id) = cursor(page)?;
    let rows = sqlx::query(
        "SELECT * FROM race_messages WHERE game_id = $1 \
         AND (sender_race = $2 OR $2 = ANY(recipients)) \
         AND ($3::timestamptz IS NULL OR (sent_at, id) < ($3, $4)) \
         ORDER BY sent_at DESC, id DESC LIMIT $5",
    )
    .bind(game_id.as_uuid())
    .bind(race)
    .bind(after_at)
    .bind(after_id)
    .bind(page_limit(page))
    .fetch_all(&store.pool)
    .await
    .map_err(db(MESSAGE))?;
    let items = rows
        .iter()
        .map(message_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page_of(items, page, |m| (m.sent_at, m.id.as_uuid())))
}
