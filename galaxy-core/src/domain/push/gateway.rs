//! The gateway's side of a push subscription: who subscribes ([`GatewayClientId`]), why a
//! subscription is refused ([`SubscribeError`]) and why one ends ([`SubscriptionEnded`]).
//!
//! Value objects of the domain rather than of the push service, so the transport that
//! carries subscriptions (the gRPC adapter) and the service that serves them
//! ([`PushSubscriptions`](crate::ports::PushSubscriptions)) share them without one
//! reaching into the other.

use std::fmt;

use super::InvalidCursor;

/// The longest gateway client id accepted.
pub const MAX_GATEWAY_CLIENT_ID_LEN: usize = 128;

/// A gateway client id was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidGatewayClientId {
    /// The id is empty.
    #[error("gateway client id is empty")]
    Empty,
    /// The id is too long.
    #[error(
        "gateway client id is {len} bytes long; at most {MAX_GATEWAY_CLIENT_ID_LEN} are allowed"
    )]
    TooLong {
        /// Length of the rejected input in bytes.
        len: usize,
    },
    /// The id contains a character outside `[A-Za-z0-9._:-]`.
    #[error(
        "gateway client id has {found:?} at position {position}; only ASCII letters, digits and `._:-` are allowed"
    )]
    BadCharacter {
        /// The first offending character.
        found: char,
        /// Its position (in characters, from 0).
        position: usize,
    },
}

/// Who is subscribed: 1 to 128 characters of `[A-Za-z0-9._:-]`, e.g. `gateway-1:eu`.
/// One subscription per id is live at a time (a new one replaces the old).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GatewayClientId(String);

impl GatewayClientId {
    /// Validates an id; never panics, whatever the input.
    pub fn parse(input: &str) -> Result<Self, InvalidGatewayClientId> {
        if input.is_empty() {
            return Err(InvalidGatewayClientId::Empty);
        }
        if input.len() > MAX_GATEWAY_CLIENT_ID_LEN {
            return Err(InvalidGatewayClientId::TooLong { len: input.len() });
        }
        if let Some((position, found)) = input
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
        {
            return Err(InvalidGatewayClientId::BadCharacter { found, position });
        }
        Ok(Self(input.to_owned()))
    }

    /// The id as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GatewayClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a subscription was refused. Both are the caller's input; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The cursor is not one this server issues.
    #[error(transparent)]
    InvalidCursor(#[from] InvalidCursor),
    /// The gateway client id is not acceptable.
    #[error(transparent)]
    InvalidGatewayClientId(#[from] InvalidGatewayClientId),
}

/// Why a subscription ended. Either way the gateway may subscribe again with the cursor of
/// the last event it handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscriptionEnded {
    /// A newer subscription with the same gateway client id took over.
    #[error("replaced by a newer subscription with the same gateway client id")]
    Replaced,
    /// The subscriber did not read and its buffer of `buffer` events filled up.
    #[error("subscriber lagged: {buffer} events queued unread; reconnect with the last cursor")]
    Lagged {
        /// The bound that was reached.
        buffer: usize,
    },
    /// This replica fell behind the shared log while its events were purged, so events
    /// up to `purged_through` never reached the subscription: subscribing again with the
    /// last cursor gets a resync, where going on would have skipped them silently.
    #[error(
        "events up to {purged_through} were purged before this replica read them; reconnect \
         with the last cursor"
    )]
    Gap {
        /// The last sequence number the log purged.
        purged_through: u64,
    },
}
