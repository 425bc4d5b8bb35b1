//! Conformance suites: one public async suite per port, run unchanged against every
//! implementation (the in-memory stores here, Postgres in its adapter crate; the
//! container runtime, mailer, engine client and geo locator suites, behind the
//! `adapter-conformance` feature, in each adapter crate's tests).
//!
//! Every suite exposes `run_all(make)`: `make` is called once per case and must return a
//! fresh, empty store, so cases never see each other's data. A failing case panics; the
//! case name is printed to stderr before it runs so the failure is easy to place.

pub mod changes;
#[cfg(feature = "adapter-conformance")]
pub mod container;
#[cfg(feature = "adapter-conformance")]
pub mod engine;
pub mod geo;
pub mod keys;
pub mod lobby;
#[cfg(feature = "adapter-conformance")]
pub mod locator;
pub mod mail;
pub mod mail_in;
#[cfg(feature = "adapter-conformance")]
pub mod mailer;
pub mod notification;
pub mod pbem;
pub mod play;
pub mod push;
pub mod queue;
pub mod race_names;
pub mod runtime;
pub mod users;

use std::future::Future;

/// Runs one case on a fresh store from `make`.
pub async fn run_case<S, F, Fut, C, CFut>(suite: &str, name: &str, make: &F, case: C)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    C: FnOnce(S) -> CFut,
    CFut: Future<Output = ()>,
{
    eprintln!("conformance {suite}: {name}");
    let store = make().await;
    case(store).await;
}
