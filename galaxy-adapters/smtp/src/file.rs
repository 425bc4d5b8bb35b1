//! The development mailer: every mail becomes an `.eml` file in one directory, rendered
//! by lettre as the SMTP mailer would send it.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use galaxy_core::domain::mail::OutgoingMail;
use galaxy_core::ports::{Mailer, MailerError};

use crate::message::render_eml;

/// The `kind` of the mails that carry a login code (as the auth service queues them).
const LOGIN_CODE_KIND: &str = "login_code";

/// Writes each mail as `<dir>/<idempotency key>.eml` instead of sending it.
#[derive(Debug, Clone)]
pub struct FileMailer {
    /// Where the files go; created on the first send.
    dir: PathBuf,
    /// The `From:` header (`GALAXY_MAIL_FROM`).
    from: String,
    /// Whether the code line of login mails is logged: convenient in dev mode, a leak
    /// anywhere else, hence off unless asked for.
    log_login_codes: bool,
}

impl FileMailer {
    /// A mailer writing into `dir` with `from` as sender; login codes are not logged.
    pub fn new(dir: impl Into<PathBuf>, from: impl Into<String>) -> Self {
        Self {
            dir: dir.into(),
            from: from.into(),
            log_login_codes: false,
        }
    }

    /// Also logs the first line of every login-code mail (which holds the code), so a
    /// developer can log in from the console. Only for development.
    pub fn with_login_code_logging(mut self, enabled: bool) -> Self {
        self.log_login_codes = enabled;
        self
    }

    /// The directory the files go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a mail is written to: named after its idempotency key, so a repeated
    /// delivery of the same mail overwrites rather than duplicates.
    pub fn path_for(&self, mail: &OutgoingMail) -> PathBuf {
        let mut name: String = mail
            .idempotency_key
            .chars()
            .take(200)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if name.is_empty() {
            name.push_str("mail");
        }
        self.dir.join(format!("{name}.eml"))
    }
}

#[async_trait]
impl Mailer for FileMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<String, MailerError> {
        let transient = |what: &str, path: &Path, e: std::io::Error| {
            MailerError::Transient(format!("{what} {}: {e}", path.display()))
        };
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| transient("cannot create", &self.dir, e))?;
        let path = self.path_for(mail);
        let partial = path.with_extension("eml.partial");
        // A sender or recipient lettre cannot use will not get better on a retry.
        let message = render_eml(mail, &self.from, std::time::SystemTime::now())
            .map_err(|e| MailerError::Permanent(e.to_string()))?;
        tokio::fs::write(&partial, message)
            .await
            .map_err(|e| transient("cannot write", &partial, e))?;
        // The rename makes the file appear whole: a reader never sees half a mail.
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(|e| transient("cannot rename to", &path, e))?;
        if self.log_login_codes && mail.kind == LOGIN_CODE_KIND {
            let line = mail.text_body.lines().next().unwrap_or_default();
            tracing::info!(
                to = %mail.to.as_str(),
                path = %path.display(),
                "dev mode login mail: {line}"
            );
        } else {
            tracing::debug!(kind = %mail.kind, path = %path.display(), "mail written");
        }
        Ok(format!("written to {}", path.display()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use galaxy_core::domain::user::{Email, Locale};

    fn login_mail(key: &str) -> OutgoingMail {
        OutgoingMail {
            idempotency_key: key.to_owned(),
            to: Email::parse("ann@example.com").unwrap(),
            kind: LOGIN_CODE_KIND.to_owned(),
            locale: Locale::default(),
            subject: "Your Galaxy login code".to_owned(),
            text_body: "Your Galaxy login code is 123456\n".to_owned(),
            html_body: None,
            extras: Default::default(),
        }
    }

    #[tokio::test]
    async fn writes_one_eml_per_mail_and_rewrites_a_repeat() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mail");
        let mailer =
            FileMailer::new(&dir, "Galaxy <galaxy@localhost>").with_login_code_logging(true);
        let mail = login_mail("login-code:abc/../../x");
        let reply = mailer.send(&mail).await.unwrap();
        let path = mailer.path_for(&mail);
        assert_eq!(
            path.parent(),
            Some(dir.as_path()),
            "key cannot escape the dir"
        );
        assert!(reply.contains(&*path.to_string_lossy()), "{reply}");
        mailer.send(&mail).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("Your Galaxy login code is 123456"), "{text}");
        assert!(text.contains("To: ann@example.com"), "{text}");
    }

    #[tokio::test]
    async fn an_unwritable_directory_is_a_transient_failure() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let mailer = FileMailer::new(file.join("mail"), "g@localhost");
        let err = mailer.send(&login_mail("k")).await.unwrap_err();
        assert!(!err.is_permanent(), "{err}");
    }
}
