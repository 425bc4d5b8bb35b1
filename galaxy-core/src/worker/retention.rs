//! The retention sweeper: what the platform keeps only for a while is deleted once its
//! period is over, so no table grows forever. Expired login challenges go a day after
//! they expired (long enough to investigate abuse), sent mail after a month (delivery
//! questions are answered by then); dead and undelivered mail stays for an admin.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::TimeDelta;

use super::{TickReport, Worker};
use crate::ports::{ChallengeStore, Clock, MailStore, StoreError};

/// How long each kind of record is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    /// How long a login challenge is kept after it expired.
    pub challenges: TimeDelta,
    /// How long a mail is kept after it was sent.
    pub sent_mail: TimeDelta,
}

impl Default for RetentionConfig {
    /// A day for expired challenges, thirty days for sent mail.
    fn default() -> Self {
        Self {
            challenges: TimeDelta::days(1),
            sent_mail: TimeDelta::days(30),
        }
    }
}

/// Deletes expired challenges and old sent mail, once per tick.
pub struct RetentionSweeper {
    /// Login challenges.
    challenges: Arc<dyn ChallengeStore>,
    /// The mail outbox.
    mail: Arc<dyn MailStore>,
    /// The only source of time.
    clock: Arc<dyn Clock>,
    /// The periods.
    config: RetentionConfig,
}

impl RetentionSweeper {
    /// A sweeper over these stores.
    pub fn new(
        challenges: Arc<dyn ChallengeStore>,
        mail: Arc<dyn MailStore>,
        clock: Arc<dyn Clock>,
        config: RetentionConfig,
    ) -> Self {
        Self {
            challenges,
            mail,
            clock,
            config,
        }
    }
}

#[async_trait]
impl Worker for RetentionSweeper {
    fn name(&self) -> &'static str {
        "retention_sweeper"
    }

    /// One purge of each kind. Reports `handled: 0` whatever it deleted: a purge is a
    /// periodic clean-up, not queue work to run again at once.
    async fn tick(&self) -> Result<TickReport, StoreError> {
        let now = self.clock.now();
        let mut challenges = 0;
        if let Some(before) = now.checked_sub_signed(self.config.challenges) {
            challenges = self.challenges.purge_challenges(before).await?;
        }
        let mut mails = 0;
        if let Some(before) = now.checked_sub_signed(self.config.sent_mail) {
            mails = self.mail.purge_sent_mail(before).await?;
        }
        if challenges + mails > 0 {
            tracing::info!(challenges, mails, "retention: old records deleted");
        }
        Ok(TickReport { handled: 0 })
    }
}
