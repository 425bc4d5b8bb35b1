#![doc = include_str!("../README.md")]

mod file;
mod message;
mod smtp;
mod url;

pub use file::FileMailer;
pub use message::{MessageError, check_sender, render_eml, sender_domain};
pub use smtp::{SmtpConfigError, SmtpMailer, SmtpMailerConfig};
pub use url::{SmtpSecurity, SmtpUrl, SmtpUrlError};
