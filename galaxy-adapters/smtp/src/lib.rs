#![doc = include_str!("../README.md")]

mod eml;
mod file;

pub use eml::render_eml;
pub use file::FileMailer;
