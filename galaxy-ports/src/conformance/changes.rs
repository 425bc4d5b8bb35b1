//! The [`ChangeBus`] suite: `make` returns two processes on one fresh bus.

use std::future::Future;
use std::time::Duration;

use galaxy_core::domain::{GameId, SessionId, UserId};
use galaxy_core::ports::{Change, ChangeBus, ChangeNote, ChangeSubscription};

use super::run_case;

/// How long a note may take to arrive before the case fails: generous, as this is a
/// correctness suite, not a benchmark (the server's tests state the real bound).
const PATIENCE: Duration = Duration::from_secs(20);

/// Runs every case.
pub async fn run_all<B, F, Fut>(make: F)
where
    B: ChangeBus,
    F: Fn() -> Fut,
    Fut: Future<Output = (B, B)>,
{
    run_case(
        "changes",
        "a note reaches the other process only",
        &make,
        |(a, b)| only_the_other_process_hears_a_note(a, b),
    )
    .await;
    run_case(
        "changes",
        "notes arrive in order, every kind",
        &make,
        |(a, b)| notes_arrive_in_order(a, b),
    )
    .await;
}

async fn next(subscription: &mut ChangeSubscription) -> ChangeNote {
    match tokio::time::timeout(PATIENCE, subscription.next()).await {
        Ok(Some(note)) => note,
        Ok(None) => panic!("the bus closed"),
        Err(_) => panic!("no note within {PATIENCE:?}"),
    }
}

async fn only_the_other_process_hears_a_note<B: ChangeBus>(a: B, b: B) {
    let mut heard_by_a = a.subscribe();
    let mut heard_by_b = b.subscribe();
    let from_a = Change::User(UserId::from_uuid(uuid::Uuid::new_v4()));
    let from_b = Change::Game(GameId::from_uuid(uuid::Uuid::new_v4()));
    a.publish(from_a).await.unwrap_or_else(|e| panic!("{e}"));
    b.publish(from_b).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(next(&mut heard_by_b).await, ChangeNote::Changed(from_a));
    // A skipped its own note: the first it hears is B's.
    assert_eq!(next(&mut heard_by_a).await, ChangeNote::Changed(from_b));
}

async fn notes_arrive_in_order<B: ChangeBus>(a: B, b: B) {
    let mut heard = b.subscribe();
    let changes = [
        Change::Session(SessionId::from_uuid(uuid::Uuid::new_v4())),
        Change::User(UserId::from_uuid(uuid::Uuid::new_v4())),
        Change::Game(GameId::from_uuid(uuid::Uuid::new_v4())),
        Change::Session(SessionId::from_uuid(uuid::Uuid::new_v4())),
    ];
    for change in changes {
        a.publish(change).await.unwrap_or_else(|e| panic!("{e}"));
    }
    for change in changes {
        assert_eq!(next(&mut heard).await, ChangeNote::Changed(change));
    }
}
