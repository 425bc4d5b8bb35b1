//! The example's own adapter: a `Mailer` decorator.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use galaxy_core::domain::mail::OutgoingMail;
use galaxy_core::ports::{Mailer, MailerError};

/// Forwards every mail to `inner` and remembers the login code of each login mail, so
/// this program can log itself in. (A real service might count mails, add a footer, or
/// route some kinds to another provider the same way.)
pub struct CodeCatcher {
    /// Where mail really goes.
    inner: Arc<dyn Mailer>,
    /// The latest login code per recipient.
    codes: Mutex<HashMap<String, String>>,
}

impl CodeCatcher {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Mailer>) -> Self {
        Self {
            inner,
            codes: Mutex::new(HashMap::new()),
        }
    }

    /// The latest login code mailed to `email`.
    pub fn code_for(&self, email: &str) -> Option<String> {
        self.codes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(email)
            .cloned()
    }
}

#[async_trait]
impl Mailer for CodeCatcher {
    async fn send(&self, mail: &OutgoingMail) -> Result<String, MailerError> {
        let reply = self.inner.send(mail).await?;
        if mail.kind == "login_code" {
            let code = mail
                .text_body
                .split_whitespace()
                .find(|word| word.len() >= 6 && word.chars().all(|c| c.is_ascii_digit()));
            if let Some(code) = code {
                self.codes
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(mail.to.as_str().to_owned(), code.to_owned());
            }
        }
        Ok(reply)
    }
}
