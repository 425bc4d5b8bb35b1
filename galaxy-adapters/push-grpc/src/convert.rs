//! Mapping between the domain's push events and the wire messages.

use chrono::DateTime;
use galaxy_core::domain::UserId;
use galaxy_core::domain::push::{InvalidCursor, PushCursor, PushEvent};
use uuid::Uuid;

use crate::pb;

/// A wire event could not be read as a domain event (a server bug or a foreign server).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidEvent {
    /// `event_id` is not a UUID.
    #[error("push event id {0:?} is not a UUID")]
    EventId(String),
    /// `cursor` is not a cursor.
    #[error("push event cursor is invalid: {0}")]
    Cursor(#[from] InvalidCursor),
    /// A user id is not a UUID.
    #[error("push event user id {0:?} is not a UUID")]
    UserId(String),
    /// `payload_json` is not JSON.
    #[error("push event payload is not JSON: {0}")]
    Payload(#[from] serde_json::Error),
    /// `occurred_at_unix_micros` is outside the representable range.
    #[error("push event time {0} is out of range")]
    OccurredAt(i64),
}

impl From<&PushEvent> for pb::PushEvent {
    fn from(event: &PushEvent) -> Self {
        Self {
            event_id: event.event_id.to_string(),
            cursor: event.cursor.to_string(),
            user_ids: event.user_ids.iter().map(ToString::to_string).collect(),
            kind: event.kind.clone(),
            // `Value`'s Display is its JSON text and cannot fail.
            payload_json: event.payload.to_string(),
            occurred_at_unix_micros: event.occurred_at.timestamp_micros(),
        }
    }
}

impl TryFrom<pb::PushEvent> for PushEvent {
    type Error = InvalidEvent;

    /// Reads a wire event; for gateways that want typed ids and a parsed payload.
    fn try_from(event: pb::PushEvent) -> Result<Self, Self::Error> {
        let event_id =
            Uuid::try_parse(&event.event_id).map_err(|_| InvalidEvent::EventId(event.event_id))?;
        let user_ids = event
            .user_ids
            .into_iter()
            .map(|id| UserId::parse(&id).map_err(|_| InvalidEvent::UserId(id)))
            .collect::<Result<_, _>>()?;
        let micros = event.occurred_at_unix_micros;
        Ok(Self {
            event_id,
            cursor: PushCursor::parse(&event.cursor)?,
            user_ids,
            kind: event.kind,
            payload: serde_json::from_str(&event.payload_json)?,
            occurred_at: DateTime::from_timestamp_micros(micros)
                .ok_or(InvalidEvent::OccurredAt(micros))?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_event_survives_the_wire() {
        let event = PushEvent {
            event_id: Uuid::from_u128(1),
            cursor: PushCursor::new(0xabc, 7),
            user_ids: vec![UserId::from_uuid(Uuid::from_u128(2))],
            kind: "game.turn_completed".into(),
            payload: serde_json::json!({ "turn": 3, "name": "é" }),
            occurred_at: DateTime::from_timestamp_micros(1_893_456_000_123_456).unwrap(),
        };
        let wire = pb::PushEvent::from(&event);
        assert_eq!(wire.cursor, "v1.abc.7");
        assert_eq!(PushEvent::try_from(wire).unwrap(), event);
    }

    #[test]
    fn a_bad_wire_event_is_a_typed_error() {
        let good = pb::PushEvent {
            event_id: Uuid::from_u128(1).to_string(),
            cursor: "v1.1.1".into(),
            payload_json: "{}".into(),
            ..Default::default()
        };
        assert!(PushEvent::try_from(good.clone()).is_ok());
        let cases = [
            pb::PushEvent {
                event_id: "x".into(),
                ..good.clone()
            },
            pb::PushEvent {
                cursor: "nope".into(),
                ..good.clone()
            },
            pb::PushEvent {
                user_ids: vec!["u".into()],
                ..good.clone()
            },
            pb::PushEvent {
                payload_json: "{".into(),
                ..good.clone()
            },
            pb::PushEvent {
                occurred_at_unix_micros: i64::MAX,
                ..good
            },
        ];
        for case in cases {
            assert!(PushEvent::try_from(case).is_err());
        }
    }
}
