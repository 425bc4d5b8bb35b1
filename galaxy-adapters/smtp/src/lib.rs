#![doc = include_str!("../README.md")]

mod eml;
mod file;
mod message;
mod smtp;
mod url;

pub use eml::render_eml;
pub use file::FileMailer;
pub use smtp::{SmtpConfigError, SmtpMailer, SmtpMailerConfig};
pub use url::{SmtpCredentials, SmtpSecurity, SmtpUrl, SmtpUrlError};
