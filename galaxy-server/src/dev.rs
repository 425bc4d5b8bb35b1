//! `galaxy-server dev`: the whole platform in one process with no external service.
//!
//! In-memory stores (state is lost on exit), mail written as `.eml` files under
//! `$GALAXY_DATA_DIR/mail/` with the login-code line of each login mail logged (the one
//! place a code is ever logged, by design: SPEC section 10), geo `unknown`, the admin
//! role for `admin@localhost`, and engines run by the process runtime (unless
//! `GALAXY_RUNTIME` says otherwise).

use std::path::PathBuf;
#[cfg(feature = "smtp")]
use std::sync::Arc;

use galaxy_core::domain::user::Email;
#[cfg(feature = "smtp")]
use galaxy_smtp::FileMailer;

#[cfg(feature = "smtp")]
use crate::adapters::Adapters;
#[cfg(feature = "smtp")]
use crate::app::App;
use crate::config::Config;
use crate::error::AppError;

/// The account that is an admin in dev mode.
pub const DEV_ADMIN: &str = "admin@localhost";

/// Where dev-mode mail goes: `$GALAXY_DATA_DIR/mail`.
pub fn mail_dir(config: &Config) -> PathBuf {
    config.data_dir.join("mail")
}

/// `config` with [`DEV_ADMIN`] added to the bootstrap admins.
pub fn dev_config(mut config: Config) -> Result<Config, AppError> {
    let admin = Email::parse(DEV_ADMIN).map_err(|e| AppError::Setting {
        variable: "GALAXY_BOOTSTRAP_ADMINS",
        reason: e.to_string(),
    })?;
    if !config.bootstrap_admins.contains(&admin) {
        config.bootstrap_admins.push(admin);
    }
    // A dev-mode game really runs, with no Docker needed.
    config
        .runtime
        .kind
        .get_or_insert(crate::config::RuntimeKind::Process);
    Ok(config)
}

/// In-memory stores and the file mailer that logs login codes.
#[cfg(feature = "smtp")]
pub fn dev_adapters(config: &Config) -> Adapters {
    let mailer =
        FileMailer::new(mail_dir(config), config.mail_from.clone()).with_login_code_logging(true);
    Adapters::in_memory(Arc::new(mailer))
}

/// Builds the dev-mode app from `config` (needs the `smtp` feature, whose file mailer
/// writes the mail).
#[cfg(feature = "smtp")]
pub async fn build(config: Config) -> Result<App, AppError> {
    let config = dev_config(config)?;
    tracing::info!(
        mail_dir = %mail_dir(&config).display(),
        admin = DEV_ADMIN,
        "dev mode: in-memory stores, mail written as .eml files, login codes logged"
    );
    // With GALAXY_SMTP_URL set, mail goes to that relay instead of files.
    let adapters = crate::delivery::with_smtp(&config, dev_adapters(&config))?;
    App::build(config, adapters).await
}
