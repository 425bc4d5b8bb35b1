//! Messages between the races of a game: stored with the turn they were sent in,
//! delivered by push and (unless the recipient opted out for the game) by mail, readable
//! by their sender and recipients only (neither host nor admin reads others' messages),
//! also after the finish. A game may hide senders (`anonymous_messages`).

use serde_json::json;

use super::{Pbem, RuntimeError, RuntimeService, owed_notice_game, race_records};
use crate::domain::game::{Game, GameStatus};
use crate::domain::notification::{MAIL_KEY, NotificationKind};
use crate::domain::page::{Page, PageRequest};
use crate::domain::pbem::{MessageText, RaceMessage, RaceRecord};
use crate::domain::{GameId, MessageId, Timestamp, UserId};
use crate::ports::StoreError;
use crate::service::Actor;
use crate::service::templates::PER_RECIPIENT_KEY;

/// Who a message goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageTo {
    /// Every other race of the game.
    All,
    /// These races (names as players type them; case does not matter).
    Races(Vec<String>),
}

/// A message as one player sees it: the sender's race is hidden from recipients in a
/// game with anonymous messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageView {
    /// Stable id.
    pub id: MessageId,
    /// The turn it was sent in.
    pub turn: u32,
    /// The sending race; `None` when hidden.
    pub from: Option<String>,
    /// Whether the caller's race sent it.
    pub sent_by_me: bool,
    /// Whether it went to every other race.
    pub to_all: bool,
    /// The receiving races; where the sender is hidden, only the caller's own (the
    /// others would tell who sent it).
    pub to: Vec<String>,
    /// The text, plain.
    pub text: String,
    /// When it was sent.
    pub sent_at: Timestamp,
}

/// `message` as `own_race` sees it. Where the sender is hidden, so are the other
/// recipients: the races a message went to are every race but its sender's (a message to
/// all) or a list the sender is missing from, so they would tell who sent it.
fn view(message: RaceMessage, own_race: &str, anonymous: bool) -> MessageView {
    let mine = message.sender_race == own_race;
    let hidden = anonymous && !mine;
    MessageView {
        id: message.id,
        turn: message.turn,
        from: (!hidden).then_some(message.sender_race),
        sent_by_me: mine,
        to_all: message.to_all,
        to: if hidden {
            vec![own_race.to_owned()]
        } else {
            message.recipients
        },
        text: message.text,
        sent_at: message.sent_at,
    }
}

impl RuntimeService {
    /// Sends a message from the caller's race. 422 for an empty or oversized text, an
    /// unknown race, or no recipient but the sender; 429 past the per-player rate limit;
    /// 403 for a blocked account.
    pub async fn send_message(
        &self,
        actor: Actor,
        game_id: GameId,
        to: MessageTo,
        text: String,
    ) -> Result<MessageView, RuntimeError> {
        let text = MessageText::parse(text).map_err(|e| RuntimeError::validation("text", e))?;
        let game = self.game(game_id).await?;
        let own = self.own_record(actor, &game).await?;
        if !matches!(game.status, GameStatus::Running | GameStatus::Paused) {
            return Err(RuntimeError::WrongStatus {
                action: "send messages in",
                status: game.status,
            });
        }
        self.active_caller(actor).await?;
        let records = race_records(&self.pbem, &game).await?;
        let (to_all, mut recipients) = match to {
            MessageTo::All => (
                true,
                records
                    .iter()
                    .filter(|r| r.race != own.race)
                    .map(|r| r.race.clone())
                    .collect::<Vec<_>>(),
            ),
            MessageTo::Races(names) => {
                let mut found = Vec::with_capacity(names.len());
                for name in &names {
                    let race = records
                        .iter()
                        .find(|r| r.race == *name || r.race.to_lowercase() == name.to_lowercase())
                        .ok_or_else(|| {
                            RuntimeError::validation("to", format!("no race {name:?} in the game"))
                        })?;
                    if race.race != own.race {
                        found.push(race.race.clone());
                    }
                }
                (false, found)
            }
        };
        recipients.sort();
        recipients.dedup();
        if recipients.is_empty() {
            return Err(RuntimeError::validation(
                "to",
                "a message needs a recipient other than the sender's own race",
            ));
        }
        let record = self.runtime_of(game_id).await?;
        let message = RaceMessage {
            id: MessageId::from_uuid(self.pbem.uuid()),
            game_id,
            turn: record.current_turn,
            sender_user: actor.user_id,
            sender_race: own.race.clone(),
            to_all,
            recipients,
            text: text.as_str().to_owned(),
            sent_at: self.pbem.now(),
        };
        let limit = self.pbem.message_rate;
        let pbem = &self.pbem.store;
        if let Some(until) = pbem.post_message(&message, limit).await? {
            let wait = (until - message.sent_at).to_std().unwrap_or_default();
            return Err(RuntimeError::RateLimited {
                what: "too many messages in this game; wait before sending more",
                retry_after: wait,
            });
        }
        notice_message(&self.pbem, &game, &records, &message).await;
        Ok(view(message, &own.race, false))
    }

    /// The messages the caller's race sent or received, newest first; also after the
    /// finish. Nobody reads another race's messages: not the host, not an admin.
    pub async fn messages(
        &self,
        actor: Actor,
        game_id: GameId,
        page: &PageRequest,
    ) -> Result<Page<MessageView>, RuntimeError> {
        let game = self.game(game_id).await?;
        let own = self.own_record(actor, &game).await?;
        let pbem = &self.pbem.store;
        let got = pbem.list_messages(game_id, &own.race, page).await?;
        let anonymous = game.settings.pbem.anonymous_messages;
        Ok(Page {
            items: got
                .items
                .into_iter()
                .map(|m| view(m, &own.race, anonymous))
                .collect(),
            next_after: got.next_after,
        })
    }
}

/// Raises `message`'s notice to the players of its recipient races (in `records`, the
/// game's race records now), and marks it raised once every part of it is. A failure is
/// logged and the notice stays owed: the scheduler's pass raises it again
/// ([`owed_message_notices`]), its keys making a repeat a no-op.
pub(super) async fn notice_message(
    p: &Pbem,
    game: &Game,
    records: &[RaceRecord],
    message: &RaceMessage,
) {
    let to_users: Vec<(UserId, String)> = records
        .iter()
        .filter(|r| message.recipients.contains(&r.race))
        .map(|r| (r.user_id, r.race.clone()))
        .collect();
    let anonymous = game.settings.pbem.anonymous_messages;
    let raised = deliver_message(p, &game.settings.name, anonymous, message, &to_users).await;
    let marked = match raised {
        Ok(()) => p.store.message_noticed(message.id).await,
        Err(error) => Err(error),
    };
    if let Err(error) = marked {
        tracing::warn!(%error, message_id = %message.id, "message notice owed; the next pass raises it");
    }
}

/// How many owed message notices one pass raises at most.
const OWED_PER_PASS: u32 = 100;

/// How long a message's own request has to raise its notice before the pass takes it as
/// owed (both raising it is harmless, only wasted work).
const OWED_AFTER: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

/// Raises the message notices still owed (a raise that failed, a server that died right
/// after storing a message), oldest first, up to [`OWED_PER_PASS`] per pass.
pub(in crate::service::runtime) async fn owed_message_notices(p: &Pbem) {
    let owed = match p.store.owed_message_notices(OWED_PER_PASS).await {
        Ok(owed) => owed,
        Err(error) => {
            tracing::warn!(%error, "owed message notices not read");
            return;
        }
    };
    let now = p.now();
    for message in owed.iter().take_while(|m| m.sent_at + OWED_AFTER <= now) {
        let settle = || p.store.message_noticed(message.id);
        let Some(game) = owed_notice_game(p, message.game_id, "race_message", settle).await else {
            continue;
        };
        match race_records(p, &game).await {
            Ok(records) => notice_message(p, &game, &records, message).await,
            Err(error) => {
                tracing::warn!(%error, message_id = %message.id, "message notice waits");
            }
        }
    }
}

/// Raises the message's notifications: one for recipients who want mail, one
/// (push only) for those who opted out for this game; stops at the first that fails.
async fn deliver_message(
    p: &Pbem,
    game_name: &crate::domain::game::GameName,
    anonymous: bool,
    message: &RaceMessage,
    to_users: &[(UserId, String)],
) -> Result<(), StoreError> {
    let pbem = &p.store;
    let mut mail = Vec::new();
    let mut push_only = Vec::new();
    for (user, race) in to_users {
        let wants_mail = match pbem.preferences(message.game_id, *user).await {
            Ok(p) => p.message_mail,
            Err(error) => {
                tracing::warn!(%error, "message preference not read; mail is sent");
                true
            }
        };
        if wants_mail {
            mail.push((*user, race.clone()));
        } else {
            push_only.push((*user, race.clone()));
        }
    }
    // Hidden: `null`, as the API shows it; the mail templates word it in the
    // recipient's language.
    let from = (!anonymous).then_some(message.sender_race.as_str());
    for (group, suffix, mail_allowed) in [(mail, "", true), (push_only, ":push", false)] {
        if group.is_empty() {
            continue;
        }
        let per_recipient: serde_json::Map<String, serde_json::Value> = group
            .iter()
            .map(|(u, race)| (u.to_string(), json!({"race": race})))
            .collect();
        let mut payload = json!({
            "game_id": message.game_id,
            "game_name": game_name.as_str(),
            "message_id": message.id,
            "from": from,
            "turn": message.turn,
            "text": message.text,
            PER_RECIPIENT_KEY: per_recipient,
        });
        if !mail_allowed && let Some(fields) = payload.as_object_mut() {
            fields.insert(MAIL_KEY.to_owned(), serde_json::Value::Bool(false));
        }
        let key = format!("race_message:{}{suffix}", message.id);
        let users = group.into_iter().map(|(u, _)| u).collect();
        p.notices
            .try_notify(
                NotificationKind::RaceMessage,
                key,
                users,
                message.game_id,
                payload,
            )
            .await?;
    }
    Ok(())
}
