//! Whole enrollment flows: applying, deciding, closing, starting, deadlines.

use super::*;

#[tokio::test]
async fn a_lobby_flow_with_several_players_reaches_starting_with_one_start_job() {
    let w = World::new();
    let (host, stranger) = (w.user().await, w.user().await);
    let draft = w.lobby.create_game(host, w.new_game(2, 4)).await.unwrap();
    assert_eq!(
        (draft.status, draft.host),
        (GameStatus::Draft, host.user_id)
    );
    assert_eq!(
        kind(w.lobby.get_game(Some(stranger), draft.id).await).0,
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(w.lobby.get_game(None, draft.id).await).0,
        ErrorKind::NotFound
    );
    let open = w.lobby.open(host, draft.id).await.unwrap();
    assert_eq!(open.status, GameStatus::EnrollmentOpen);
    let listed = w
        .lobby
        .list_public_games(&PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        listed.items.iter().map(|g| g.id).collect::<Vec<_>>(),
        vec![open.id]
    );
    assert_eq!(w.lobby.get_game(None, open.id).await.unwrap().id, open.id);

    let mut apps = Vec::new();
    for name in ["Zorg", "Kree", "Vulpine", "Tessellate"] {
        let player = w.user().await;
        apps.push(w.lobby.apply(player, open.id, name).await.unwrap());
    }
    assert_eq!(
        kind(w.lobby.close(host, open.id).await),
        (CONFLICT, "no_quorum")
    );
    for app in &apps[..3] {
        let approved = w.lobby.approve(host, open.id, app.id).await.unwrap();
        assert_eq!(approved.status, ApplicationStatus::Approved);
    }
    assert_eq!(
        w.name("ZORG").await.unwrap().status,
        RaceNameStatus::Registered
    );
    assert_eq!(
        w.name("tessellate").await.unwrap().status,
        RaceNameStatus::PendingRegistration
    );
    let closed = w.lobby.close(host, open.id).await.unwrap();
    assert_eq!(
        (closed.status, closed.approved_count),
        (GameStatus::EnrollmentClosed, 3)
    );
    let starting = w.lobby.start(host, open.id).await.unwrap();
    assert_eq!(starting.status, GameStatus::Starting);
    assert_eq!(
        kind(w.lobby.start(host, open.id).await),
        (CONFLICT, "invalid_transition")
    );
    let jobs = w.jobs(open.id).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].kind, JobKind::Start);
    assert_eq!(jobs[0].idempotency_key, format!("start:{}:0", open.id));

    let notes = w.notes.0.lock().unwrap().clone();
    let submitted = notes
        .iter()
        .filter(|n| n.kind == NotificationKind::ApplicationSubmitted);
    assert!(
        submitted
            .clone()
            .all(|n| n.recipients == vec![host.user_id])
    );
    assert_eq!(submitted.count(), 4);
    let closed_note = notes
        .iter()
        .find(|n| n.kind == NotificationKind::EnrollmentClosed)
        .unwrap();
    assert_eq!(
        closed_note.recipients.len(),
        4,
        "host and the three approved players"
    );
    let mine = w
        .lobby
        .list_my_games(host, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(mine.items.len(), 1);
}

#[tokio::test]
async fn race_names_are_unique_across_case_and_confusables_but_reusable_by_their_owner() {
    let w = World::new();
    let host = w.user().await;
    let (first, second) = (w.open_game(host, 2, 4).await, w.open_game(host, 2, 4).await);
    let (owner, rival) = (w.user().await, w.user().await);
    let app = w.lobby.apply(owner, first.id, "Zorg").await.unwrap();
    for variant in ["ZORG", "Z0rg", "Z\u{43e}rg", "  zorg "] {
        let refused = w.lobby.apply(rival, first.id, variant).await;
        assert_eq!(kind(refused), (CONFLICT, "race_name_taken"), "{variant}");
    }
    assert!(
        w.lobby
            .list_applications(rival, first.id)
            .await
            .unwrap()
            .is_empty()
    );
    // The owner's claim is pending for a pending application: not reusable yet.
    let busy = w.lobby.apply(owner, second.id, "zorg").await;
    assert_eq!(kind(busy), (CONFLICT, "race_name_in_use"));
    w.lobby.approve(host, first.id, app.id).await.unwrap();
    let again = w.lobby.apply(owner, second.id, "ZORG").await.unwrap();
    assert_eq!(again.race_name.as_str(), "ZORG");
    let entry = w.name("Zorg").await.unwrap();
    assert_eq!(
        (entry.status, entry.owner),
        (RaceNameStatus::Registered, owner.user_id)
    );
    assert_eq!(
        kind(w.lobby.apply(rival, second.id, "Zorg").await).1,
        "race_name_taken"
    );
    assert_eq!(w.lobby.my_race_names(owner).await.unwrap().len(), 1);
    // In use by live applications: the owner cannot let it go.
    let release = w.lobby.release_race_name(owner, "zorg").await;
    assert_eq!(kind(release), (CONFLICT, "race_name_in_use"));
    assert_eq!(
        kind(w.lobby.release_race_name(rival, "zorg").await).0,
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn rejecting_or_withdrawing_frees_the_claim_and_a_registered_name_can_be_released() {
    let w = World::new();
    let host = w.user().await;
    let game = w.open_game(host, 2, 4).await;
    let (a, b, c) = (w.user().await, w.user().await, w.user().await);
    let app_a = w.lobby.apply(a, game.id, "Zorg").await.unwrap();
    let rejected = w.lobby.reject(host, game.id, app_a.id).await.unwrap();
    assert_eq!(rejected.status, ApplicationStatus::Rejected);
    assert_eq!(
        w.name("Zorg").await.unwrap().status,
        RaceNameStatus::Released
    );
    assert!(w.kinds().contains(&NotificationKind::ApplicationRejected));
    assert_eq!(
        kind(w.lobby.approve(host, game.id, app_a.id).await).1,
        "not_pending"
    );
    w.lobby.apply(b, game.id, "zorg").await.unwrap();
    assert_eq!(
        w.lobby.withdraw(b, game.id).await.unwrap().status,
        ApplicationStatus::Withdrawn
    );
    assert_eq!(
        w.name("Zorg").await.unwrap().status,
        RaceNameStatus::Released
    );
    assert_eq!(
        kind(w.lobby.withdraw(b, game.id).await).0,
        ErrorKind::NotFound
    );
    let app_c = w.lobby.apply(c, game.id, "Zorg").await.unwrap();
    w.lobby.approve(host, game.id, app_c.id).await.unwrap();
    assert_eq!(kind(w.lobby.withdraw(c, game.id).await).1, "not_pending");
    w.lobby.cancel(host, game.id).await.unwrap();
    let released = w.lobby.release_race_name(c, "ZORG").await.unwrap();
    assert_eq!(released.status, RaceNameStatus::Released);
    assert!(w.lobby.my_race_names(c).await.unwrap().is_empty());
}

/// A cancelled game never starts: the names its pending applications claimed are free at
/// once (not held for their time to live), so applying to games of one's own and
/// cancelling them holds no name from anyone. An approved player's name stays theirs.
#[tokio::test]
async fn cancelling_a_game_frees_the_names_its_pending_applications_claimed() {
    let w = World::new();
    let host = w.user().await;
    let (squatter, player, rival) = (w.user().await, w.user().await, w.user().await);
    let game = w.open_game(host, 2, 4).await;
    let elsewhere = w.open_game(host, 2, 4).await;
    w.lobby.apply(squatter, game.id, "Zorg").await.unwrap();
    let approved = w.lobby.apply(player, game.id, "Kree").await.unwrap();
    w.lobby.approve(host, game.id, approved.id).await.unwrap();
    assert_eq!(
        kind(w.lobby.apply(rival, elsewhere.id, "zorg").await),
        (CONFLICT, "race_name_taken")
    );
    w.lobby.cancel(host, game.id).await.unwrap();
    assert_eq!(
        w.name("Zorg").await.unwrap().status,
        RaceNameStatus::Released
    );
    assert_eq!(
        w.name("Kree").await.unwrap().status,
        RaceNameStatus::Registered
    );
    w.lobby.apply(rival, elsewhere.id, "zorg").await.unwrap();
}

#[tokio::test]
async fn a_registered_name_in_use_by_a_later_game_stays_its_owners() {
    let w = World::new();
    let host = w.user().await;
    let player = w.user().await;
    // Registered in a first game, which then ends.
    let first = w.open_game(host, 2, 4).await;
    let app = w.lobby.apply(player, first.id, "Zorblax").await.unwrap();
    w.lobby.approve(host, first.id, app.id).await.unwrap();
    w.lobby.cancel(host, first.id).await.unwrap();
    // Used again in a second game, still enrolling.
    let second = w.open_game(host, 2, 4).await;
    w.lobby.apply(player, second.id, "zorblax").await.unwrap();
    assert_eq!(
        kind(w.lobby.release_race_name(player, "Zorblax").await),
        (CONFLICT, "race_name_in_use")
    );
    // Once that application is gone, the name may go.
    w.lobby.withdraw(player, second.id).await.unwrap();
    let released = w.lobby.release_race_name(player, "Zorblax").await.unwrap();
    assert_eq!(released.status, RaceNameStatus::Released);
}

#[tokio::test]
async fn reaching_max_players_closes_enrollment_by_system_and_full_games_refuse() {
    let config = LobbyConfig {
        auto_start: true,
        ..LobbyConfig::default()
    };
    let w = World::build(config, None);
    let host = w.user().await;
    let game = w.game_with(host, 2, 2, 2).await;
    assert_eq!(
        (game.status, game.approved_count),
        (GameStatus::Starting, 2)
    );
    let history = w.store.game_transitions(game.id).await.unwrap();
    let triggers: Vec<_> = history.iter().map(|t| (t.to, t.trigger)).collect();
    assert_eq!(
        &triggers[1..],
        &[
            (GameStatus::EnrollmentClosed, GameTrigger::System),
            (GameStatus::Starting, GameTrigger::System)
        ]
    );
    assert_eq!(w.jobs(game.id).await.len(), 1);

    // The closing status change is lost (crash): the game stays open and full.
    let w = World::new();
    let host = w.user().await;
    let game = w.open_game(host, 2, 2).await;
    let mut apps = Vec::new();
    for name in ["Alpha", "Beta", "Gamma"] {
        apps.push(w.lobby.apply(w.user().await, game.id, name).await.unwrap());
    }
    w.lobby.approve(host, game.id, apps[0].id).await.unwrap();
    w.games.crash_next_change.store(true, Ordering::SeqCst);
    w.lobby.approve(host, game.id, apps[1].id).await.unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::EnrollmentOpen);
    assert_eq!(
        kind(w.lobby.approve(host, game.id, apps[2].id).await),
        (CONFLICT, "game_full")
    );
    assert_eq!(w.game(game.id).await.approved_count, 2);
    // The deadline sweep closes it (quorum).
    w.clock.advance(TimeDelta::days(4));
    LobbySweeper::new(w.lobby.clone())
        .run_until_idle(5)
        .await
        .unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::EnrollmentClosed);
}

#[tokio::test]
async fn an_approval_landing_during_the_deadline_sweep_saves_the_game_from_cancelling() {
    let w = World::new();
    let host = w.user().await;
    let game = w.game_with(host, 2, 4, 1).await;
    let last = w.user().await;
    let app = w.lobby.apply(last, game.id, "Lastminute").await.unwrap();
    w.clock.advance(TimeDelta::days(8));
    // The sweeper reads the game one player short; the host's approval lands before its
    // cancel does.
    *w.games.approve_before_next_change.lock().unwrap() = Some(app.id);
    let sweeper = LobbySweeper::new(w.lobby.clone());
    sweeper.tick().await.unwrap();
    let read = w.game(game.id).await;
    assert_eq!(
        (read.status, read.approved_count),
        (GameStatus::EnrollmentOpen, 2)
    );
    // The next pass judges the game as it is: it has its quorum.
    sweeper.run_until_idle(5).await.unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::EnrollmentClosed);
    let history = w.store.game_transitions(game.id).await.unwrap();
    assert!(
        history.iter().all(|t| t.to != GameStatus::Cancelled),
        "{history:?}"
    );
}

#[tokio::test]
async fn deadline_sweeps_close_cancel_and_settle_expired_names() {
    let w = World::new();
    let host = w.user().await;
    let quorum = w.game_with(host, 2, 4, 1).await;
    let (crashed, late) = (w.user().await, w.user().await);
    let app = w.lobby.apply(crashed, quorum.id, "Crashed").await.unwrap();
    // Approved by the store, but the process died before the name was registered.
    w.store
        .approve_application(app.id, w.clock.now())
        .await
        .unwrap();
    let short = w.game_with(host, 2, 4, 1).await;
    w.lobby.apply(late, short.id, "Latecomer").await.unwrap();
    let draft = w.lobby.create_game(host, w.new_game(2, 4)).await.unwrap();
    let sweeper = LobbySweeper::new(w.lobby.clone()).with_batch(10);
    let approvals = || {
        let kinds = w.kinds();
        kinds
            .into_iter()
            .filter(|k| *k == NotificationKind::ApplicationApproved)
            .count()
    };
    let before = approvals();
    assert_eq!(
        sweeper.tick().await.unwrap().handled,
        1,
        "nothing is due yet but the crashed approval's notification, which was owed"
    );
    assert_eq!(approvals(), before + 1, "the crashed approval is announced");

    w.clock.advance(TimeDelta::days(8));
    assert_eq!(
        sweeper.tick().await.unwrap().handled,
        5,
        "2 names + 3 games"
    );
    assert_eq!(sweeper.tick().await.unwrap().handled, 0);
    let status = |g: Game| (g.status, g.approved_count);
    assert_eq!(
        status(w.game(quorum.id).await),
        (GameStatus::EnrollmentClosed, 2)
    );
    assert_eq!(status(w.game(short.id).await), (GameStatus::Cancelled, 1));
    assert_eq!(w.game(draft.id).await.status, GameStatus::Cancelled);
    for id in [quorum.id, short.id, draft.id] {
        let last = w.store.game_transitions(id).await.unwrap().pop().unwrap();
        assert_eq!(last.trigger, GameTrigger::Sweeper);
    }
    assert_eq!(
        w.name("Crashed").await.unwrap().status,
        RaceNameStatus::Registered
    );
    assert_eq!(
        w.name("Latecomer").await.unwrap().status,
        RaceNameStatus::Released
    );
    let kinds = w.kinds();
    let count = |k| kinds.iter().filter(|x| **x == k).count();
    assert_eq!(count(NotificationKind::EnrollmentClosed), 1);
    assert_eq!(count(NotificationKind::GameCancelled), 2);
}

#[tokio::test]
async fn auto_approve_approves_at_once_and_the_host_is_told_exactly_once() {
    let mut notifier = MockNotifier::new();
    notifier
        .expect_notify()
        .withf(|n| n.kind == NotificationKind::ApplicationSubmitted && n.recipients.len() == 1)
        .times(1)
        .returning(|_| Ok(()));
    notifier
        .expect_notify()
        .withf(|n| n.kind == NotificationKind::ApplicationApproved)
        .times(1)
        .returning(|_| Ok(()));
    let w = World::build(LobbyConfig::default(), Some(Arc::new(notifier)));
    let host = w.user().await;
    let new = NewGame {
        auto_approve: true,
        ..w.new_game(2, 4)
    };
    let game = w.lobby.create_game(host, new).await.unwrap();
    w.lobby.open(host, game.id).await.unwrap();
    let app = w
        .lobby
        .apply(w.user().await, game.id, "Zorg")
        .await
        .unwrap();
    assert_eq!(app.status, ApplicationStatus::Approved);
    assert_eq!(w.game(game.id).await.approved_count, 1);
    assert_eq!(
        w.name("Zorg").await.unwrap().status,
        RaceNameStatus::Registered
    );
}

#[tokio::test]
async fn a_withdrawal_never_frees_the_claim_a_new_application_just_took() {
    let w = World::new();
    let host = w.user().await;
    let player = w.user().await;
    let first = w.open_game(host, 2, 4).await;
    let second = w.open_game(host, 2, 4).await;
    w.lobby.apply(player, first.id, "Quorlax").await.unwrap();
    // The withdrawal finds no other application using the name; the player's
    // application to another game with the same name lands before the withdrawal frees
    // the claim.
    let lobby = w.lobby.clone();
    let (game, who) = (second.id, player);
    w.race_names.before_next_release_claim(Box::pin(async move {
        lobby.apply(who, game, "Quorlax").await.unwrap();
    }));
    w.lobby.withdraw(player, first.id).await.unwrap();
    let entry = w.name("Quorlax").await.unwrap();
    assert_eq!(
        (entry.owner, entry.status),
        (player.user_id, RaceNameStatus::PendingRegistration),
        "the new application's claim stands"
    );
    // Nobody else may take it meanwhile.
    let other = w.user().await;
    let third = w.open_game(host, 2, 4).await;
    assert_eq!(
        kind(w.lobby.apply(other, third.id, "Quorlax").await).1,
        "race_name_taken"
    );
}

#[tokio::test]
async fn applying_again_and_again_tells_the_host_once_a_day() {
    let w = World::new();
    let host = w.user().await;
    let game = w.game_with(host, 2, 4, 0).await;
    let player = w.user().await;
    let submitted_keys = || {
        let notes = w.notes.0.lock().unwrap().clone();
        notes
            .into_iter()
            .filter(|n| n.kind == NotificationKind::ApplicationSubmitted)
            .map(|n| n.idempotency_key)
            .collect::<std::collections::BTreeSet<_>>()
    };
    for _ in 0..5 {
        w.lobby.apply(player, game.id, "Pesterers").await.unwrap();
        w.lobby.withdraw(player, game.id).await.unwrap();
    }
    assert_eq!(submitted_keys().len(), 1, "{:?}", submitted_keys());
    // Applying again after the host rejected is news to the host, the same day too.
    let rejected = w.lobby.apply(player, game.id, "Pesterers").await.unwrap();
    w.lobby.reject(host, game.id, rejected.id).await.unwrap();
    w.clock.advance(TimeDelta::seconds(1));
    w.lobby.apply(player, game.id, "Pesterers").await.unwrap();
    assert_eq!(submitted_keys().len(), 2, "{:?}", submitted_keys());
    w.lobby.withdraw(player, game.id).await.unwrap();
    w.clock.advance(TimeDelta::days(1));
    w.lobby.apply(player, game.id, "Pesterers").await.unwrap();
    assert_eq!(submitted_keys().len(), 3, "a new day, a new notice");
}

/// Applying and withdrawing in a loop stops at the bound per player and game (each
/// application is kept); racing applications at the bound let one through at most.
#[tokio::test]
async fn applications_of_one_player_to_one_game_are_bounded() {
    use galaxy_core::domain::application::MAX_APPLICATIONS_PER_GAME;

    let w = World::new();
    let host = w.user().await;
    let game = w.open_game(host, 2, 4).await;
    let (looper, other) = (w.user().await, w.user().await);
    let bound = usize::try_from(MAX_APPLICATIONS_PER_GAME).unwrap();
    for _ in 0..bound - 1 {
        w.lobby.apply(looper, game.id, "Zorg").await.unwrap();
        w.lobby.withdraw(looper, game.id).await.unwrap();
    }
    let racing = futures::future::join_all((0..6).map(|i| {
        w.lobby
            .apply(looper, game.id, if i % 2 == 0 { "Zorg" } else { "Quax" })
    }))
    .await;
    assert_eq!(racing.iter().filter(|r| r.is_ok()).count(), 1, "{racing:?}");
    w.lobby.withdraw(looper, game.id).await.unwrap();
    let refused = w.lobby.apply(looper, game.id, "Zorg").await;
    assert_eq!(kind(refused), (ErrorKind::Forbidden, "forbidden"));
    let mine = w.lobby.list_applications(host, game.id).await.unwrap();
    let made = mine.iter().filter(|a| a.user_id == looper.user_id).count();
    assert_eq!(made, bound);
    // Another player is not held back by it.
    w.lobby.apply(other, game.id, "Zorg").await.unwrap();
}
