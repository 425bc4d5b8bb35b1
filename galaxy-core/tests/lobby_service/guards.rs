//! What must never happen: over-approval, double starts, lost start jobs, callers acting
//! beyond their rights, bad input changing state.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_approvals_of_a_ten_player_game_approve_exactly_ten() {
    let w = World::new();
    let host = w.user().await;
    let game = w.open_game(host, 2, 10).await;
    let mut apps = Vec::new();
    for i in 0..50 {
        let player = w.user().await;
        apps.push(
            w.lobby
                .apply(player, game.id, &format!("Race{i}"))
                .await
                .unwrap(),
        );
    }
    let tasks: Vec<_> = apps
        .iter()
        .map(|app| {
            let (lobby, app_id) = (w.lobby.clone(), app.id);
            tokio::spawn(async move { lobby.approve(host, game.id, app_id).await })
        })
        .collect();
    let mut approved = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => approved += 1,
            // Full, closed, or (once closed) rejected with the other pending ones.
            Err(error) => assert!(
                matches!(error.code(), "game_full" | "not_enrolling" | "not_pending"),
                "{error}"
            ),
        }
    }
    assert_eq!(approved, 10);
    let after = w.game(game.id).await;
    assert_eq!(
        (after.approved_count, after.status),
        (10, GameStatus::EnrollmentClosed)
    );
    let listed = w.lobby.list_applications(host, game.id).await.unwrap();
    let approved_apps: Vec<&Application> = listed
        .iter()
        .filter(|a| a.status == ApplicationStatus::Approved)
        .collect();
    assert_eq!(approved_apps.len(), 10);
    for app in approved_apps {
        let entry = w.name(app.race_name.as_str()).await.unwrap();
        assert_eq!(entry.status, RaceNameStatus::Registered);
    }
    // The 40 left pending when the game filled are rejected (they can never be approved,
    // and would count against their applicants' active games), their names freed.
    let rejected: Vec<&Application> = listed
        .iter()
        .filter(|a| a.status == ApplicationStatus::Rejected)
        .collect();
    assert_eq!(rejected.len(), 40);
    for app in rejected {
        let entry = w.name(app.race_name.as_str()).await;
        assert!(
            entry
                .as_ref()
                .is_none_or(|e| e.status == RaceNameStatus::Released),
            "{entry:?}"
        );
    }
}

#[tokio::test]
async fn only_hosts_and_admins_manage_and_players_see_only_their_own_application() {
    let w = World::new();
    let (host, player, other, admin) = (
        w.user().await,
        w.user().await,
        w.user().await,
        w.admin().await,
    );
    let draft = w.lobby.create_game(host, w.new_game(2, 4)).await.unwrap();
    assert_eq!(
        kind(w.lobby.open(player, draft.id).await).0,
        ErrorKind::NotFound,
        "drafts are hidden"
    );
    w.lobby.open(host, draft.id).await.unwrap();
    assert_eq!(
        kind(w.lobby.cancel(player, draft.id).await).0,
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(w.lobby.close(player, draft.id).await).0,
        ErrorKind::Forbidden
    );
    let mine = w.lobby.apply(player, draft.id, "Zorg").await.unwrap();
    let theirs = w.lobby.apply(other, draft.id, "Kree").await.unwrap();
    assert_eq!(
        kind(w.lobby.approve(player, draft.id, mine.id).await).0,
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(w.lobby.reject(other, draft.id, mine.id).await).0,
        ErrorKind::Forbidden
    );
    assert_eq!(
        w.lobby.list_applications(player, draft.id).await.unwrap(),
        vec![mine.clone()]
    );
    assert_eq!(
        w.lobby
            .list_applications(host, draft.id)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        w.lobby
            .list_applications(admin, draft.id)
            .await
            .unwrap()
            .len(),
        2
    );
    w.lobby.approve(admin, draft.id, theirs.id).await.unwrap();
    w.lobby.cancel(admin, draft.id).await.unwrap();
    let last = w
        .store
        .game_transitions(draft.id)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        (last.trigger, last.actor),
        (GameTrigger::Admin, Some(admin.user_id))
    );

    let no_host = w.user_with(|u| u.entitlements.may_host_games = false).await;
    assert_eq!(
        kind(w.lobby.create_game(no_host, w.new_game(2, 4)).await).0,
        ErrorKind::Forbidden
    );
    let blocked = w
        .user_with(|u| u.status = UserStatus::BlockedPermanently)
        .await;
    let open = w.open_game(host, 2, 4).await;
    assert_eq!(
        kind(w.lobby.apply(blocked, open.id, "Blocked").await).0,
        ErrorKind::Forbidden
    );
    let busy = w.user_with(|u| u.entitlements.max_active_games = 1).await;
    w.lobby.apply(busy, open.id, "Busy").await.unwrap();
    let other_open = w.open_game(host, 2, 4).await;
    assert_eq!(
        kind(w.lobby.apply(busy, other_open.id, "Busier").await).0,
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(w.lobby.apply(busy, open.id, "Again").await).1,
        "already_applied"
    );
    assert!(w.name("Blocked").await.is_none() && w.name("Busier").await.is_none());
}

#[tokio::test]
async fn a_user_hosts_at_most_the_configured_unfinished_games_and_admins_more() {
    let w = World::new();
    let host = w.user().await;
    let mut games = Vec::new();
    for _ in 0..5 {
        games.push(w.lobby.create_game(host, w.new_game(2, 4)).await.unwrap());
    }
    let refused = w.lobby.create_game(host, w.new_game(2, 4)).await;
    assert_eq!(kind(refused).0, ErrorKind::Forbidden);
    // Cancelling one frees a place, a day later: creating and cancelling in a loop
    // stops at the limit.
    w.lobby.cancel(host, games[0].id).await.unwrap();
    let refused = w.lobby.create_game(host, w.new_game(2, 4)).await;
    let error = refused.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Forbidden);
    assert!(error.to_string().contains("cancelled"), "{error}");
    w.clock.advance(chrono::TimeDelta::days(1));
    assert!(w.lobby.create_game(host, w.new_game(2, 4)).await.is_ok());
    let admin = w.admin().await;
    for _ in 0..7 {
        assert!(w.lobby.create_game(admin, w.new_game(2, 4)).await.is_ok());
    }
}

#[tokio::test]
async fn admins_may_schedule_turns_closer_than_the_minimum_but_never_in_the_past() {
    let w = World::new();
    let admin = w.admin().await;
    let fast = NewGame {
        turn_schedule: "*/5 * * * * *".into(),
        ..w.new_game(2, 4)
    };
    assert!(w.lobby.create_game(admin, fast).await.is_ok());
    let past = NewGame {
        turn_schedule: "0 0 0 1 1 * 1999".into(),
        ..w.new_game(2, 4)
    };
    match w.lobby.create_game(admin, past).await.unwrap_err() {
        LobbyError::Validation { field, message } => {
            assert_eq!(field, "turn_schedule");
            assert!(message.contains("never fires after now"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let host = w.user().await;
    let fast = NewGame {
        turn_schedule: "*/10 * * * *".into(),
        ..w.new_game(2, 4)
    };
    match w.lobby.create_game(host, fast).await.unwrap_err() {
        LobbyError::Validation { message, .. } => {
            assert!(message.contains("10 min apart"), "{message}");
            assert!(message.contains("at least 1 h apart"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bad_input_on_every_method_gives_the_documented_error_and_changes_nothing() {
    let w = World::new();
    let (host, player) = (w.user().await, w.user().await);
    let past = w.clock.now() - TimeDelta::minutes(1);
    let cases: Vec<(NewGame, &str)> = vec![
        (
            NewGame {
                name: "ab".into(),
                ..w.new_game(2, 4)
            },
            "name",
        ),
        (
            NewGame {
                turn_schedule: "61 * * * *".into(),
                ..w.new_game(2, 4)
            },
            "turn_schedule",
        ),
        (
            NewGame {
                turn_schedule: "0 0 30 2 *".into(),
                ..w.new_game(2, 4)
            },
            "turn_schedule",
        ),
        (w.new_game(5, 4), "min_players"),
        (w.new_game(1, 4), "min_players"),
        (w.new_game(2, 65), "max_players"),
        (
            NewGame {
                enrollment_deadline: past,
                ..w.new_game(2, 4)
            },
            "enrollment_deadline",
        ),
        (
            NewGame {
                engine: Some("warp".into()),
                ..w.new_game(2, 4)
            },
            "engine",
        ),
        (
            NewGame {
                turn_schedule: "* * * * * *".into(),
                ..w.new_game(2, 4)
            },
            "turn_schedule",
        ),
        (
            NewGame {
                turn_schedule: "0,30 18 * * *".into(),
                ..w.new_game(2, 4)
            },
            "turn_schedule",
        ),
        (
            NewGame {
                turn_schedule: "0 0 0 1 1 * 1999".into(),
                ..w.new_game(2, 4)
            },
            "turn_schedule",
        ),
        (
            NewGame {
                name: "Spoof\u{202E}emaN".into(),
                ..w.new_game(2, 4)
            },
            "name",
        ),
        (
            NewGame {
                engine_settings: serde_json::json!([1, 2]),
                ..w.new_game(2, 4)
            },
            "engine_settings",
        ),
        (
            NewGame {
                engine_settings: serde_json::json!({ "blob": "x".repeat(17 * 1024) }),
                ..w.new_game(2, 4)
            },
            "engine_settings",
        ),
        (
            NewGame {
                engine: Some("Warp!".into()),
                ..w.new_game(2, 4)
            },
            "engine",
        ),
    ];
    for (new, expected) in cases {
        match w.lobby.create_game(host, new).await.unwrap_err() {
            LobbyError::Validation { field, .. } => assert_eq!(field, expected),
            other => panic!("{expected}: {other:?}"),
        }
    }
    assert!(
        w.lobby
            .list_my_games(host, &PageRequest::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let game = w.open_game(host, 2, 4).await;
    for bad in [
        "",
        "Z",
        "Zorg!",
        "Zorg\u{1F47D}",
        "-Zorg",
        "Zorg - Prime",
        &"x".repeat(33),
    ] {
        let error = w.lobby.apply(player, game.id, bad).await.unwrap_err();
        assert!(
            matches!(
                error,
                LobbyError::Validation {
                    field: "race_name",
                    ..
                }
            ),
            "{bad:?}"
        );
    }
    let missing_game = GameId::from_uuid(Uuid::from_u128(404));
    let missing_app = ApplicationId::from_uuid(Uuid::from_u128(405));
    assert_eq!(
        kind(w.lobby.apply(player, missing_game, "Zorg").await).0,
        ErrorKind::NotFound
    );
    for result in [
        w.lobby.open(host, missing_game).await,
        w.lobby.close(host, missing_game).await,
        w.lobby.start(host, missing_game).await,
        w.lobby.cancel(host, missing_game).await,
        w.lobby.get_game(Some(host), missing_game).await,
    ] {
        assert_eq!(kind(result).0, ErrorKind::NotFound);
    }
    assert_eq!(
        kind(w.lobby.approve(host, game.id, missing_app).await).0,
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(w.lobby.reject(host, game.id, missing_app).await).0,
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(w.lobby.list_applications(host, missing_game).await).0,
        ErrorKind::NotFound
    );
    // An application of another game looks absent.
    let elsewhere = w.open_game(host, 2, 4).await;
    let app = w.lobby.apply(player, elsewhere.id, "Zorg").await.unwrap();
    assert_eq!(
        kind(w.lobby.approve(host, game.id, app.id).await).0,
        ErrorKind::NotFound
    );
    assert_eq!(
        w.lobby.list_applications(host, elsewhere.id).await.unwrap()[0].status,
        ApplicationStatus::Pending
    );
    let release = w.lobby.release_race_name(player, "!!").await.unwrap_err();
    assert!(matches!(
        release,
        LobbyError::Validation {
            field: "race_name",
            ..
        }
    ));
    assert_eq!(
        kind(w.lobby.release_race_name(player, "Kree").await).0,
        ErrorKind::NotFound
    );

    assert!(
        w.lobby
            .list_applications(host, game.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        w.lobby.my_race_names(player).await.unwrap().len(),
        1,
        "only the good claim"
    );
    assert_eq!(w.game(game.id).await.status, GameStatus::EnrollmentOpen);
    assert!(w.jobs(game.id).await.is_empty());
    let submitted = w
        .kinds()
        .iter()
        .filter(|k| **k == NotificationKind::ApplicationSubmitted)
        .count();
    assert_eq!(submitted, 1);
}

#[tokio::test]
async fn start_queues_the_job_before_the_status_change() {
    let w = World::new();
    let host = w.user().await;
    let game = w.game_with(host, 2, 4, 2).await;
    w.lobby.close(host, game.id).await.unwrap();
    // The process dies between queueing the job and the compare-and-set.
    w.games.crash_next_change.store(true, Ordering::SeqCst);
    assert_eq!(
        kind(w.lobby.start(host, game.id).await).0,
        ErrorKind::Unavailable
    );
    assert_eq!(w.game(game.id).await.status, GameStatus::EnrollmentClosed);
    let orphan = w.jobs(game.id).await;
    assert_eq!(orphan.len(), 1, "the job survives the crash");
    // A retry finds the same job and completes the change.
    assert_eq!(
        w.lobby.start(host, game.id).await.unwrap().status,
        GameStatus::Starting
    );
    assert_eq!(w.jobs(game.id).await, orphan);

    // Meanwhile the runtime consumed an orphan job as a no-op: the retry queues a new one.
    let game = w.game_with(host, 2, 4, 2).await;
    w.lobby.close(host, game.id).await.unwrap();
    w.games.crash_next_change.store(true, Ordering::SeqCst);
    w.lobby.start(host, game.id).await.unwrap_err();
    let claim = ClaimRequest {
        token: LeaseToken::from_uuid(Uuid::from_u128(1)),
        now: w.clock.now(),
        lease: TimeDelta::minutes(1),
        limit: 10,
    };
    for job in w.runtime.claim_jobs(&claim).await.unwrap() {
        let done = JobOutcome::Succeeded;
        w.runtime
            .complete_job(job.id, claim.token, &done, claim.now)
            .await
            .unwrap();
    }
    w.lobby.start(host, game.id).await.unwrap();
    let keys: Vec<String> = w
        .jobs(game.id)
        .await
        .into_iter()
        .map(|j| j.idempotency_key)
        .collect();
    assert_eq!(
        keys,
        [
            format!("start:{}:0", game.id),
            format!("start:{}:0:1", game.id)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_starts_give_one_start_and_one_conflict_and_one_job() {
    for _ in 0..20 {
        let w = World::new();
        let host = w.user().await;
        let game = w.game_with(host, 2, 4, 2).await;
        w.lobby.close(host, game.id).await.unwrap();
        let (a, b) = (w.lobby.clone(), w.lobby.clone());
        let (x, y) = tokio::join!(
            tokio::spawn(async move { a.start(host, game.id).await }),
            tokio::spawn(async move { b.start(host, game.id).await }),
        );
        let results = [x.unwrap(), y.unwrap()];
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        let loser = results.into_iter().find_map(Result::err).unwrap();
        assert_eq!(loser.kind(), ErrorKind::Conflict);
        assert_eq!(w.jobs(game.id).await.len(), 1);
    }
}

#[tokio::test]
async fn a_start_on_a_replica_that_has_not_heard_of_the_first_queues_no_second_job() {
    let w = World::new();
    let host = w.user().await;
    let game = w.game_with(host, 2, 4, 2).await;
    let closed = w.lobby.close(host, game.id).await.unwrap();
    w.lobby.start(host, game.id).await.unwrap();
    // Another replica still holds the game as closed: the host clicks Start there too.
    w.games
        .stale
        .lock()
        .unwrap()
        .insert(closed.id, closed.clone());
    let again = w.lobby.start(host, game.id).await;
    assert!(again.is_err(), "{again:?}");
    assert_eq!(w.jobs(game.id).await.len(), 1, "one start job");
}

#[tokio::test]
async fn a_game_read_stale_is_read_again_before_a_refusal() {
    let w = World::new();
    let host = w.user().await;
    let draft = w.lobby.create_game(host, w.new_game(2, 4)).await.unwrap();
    // This replica still sees the draft; another one opened it.
    w.games
        .stale
        .lock()
        .unwrap()
        .insert(draft.id, draft.clone());
    w.store
        .update_game_status(
            draft.id,
            GameStatus::Draft,
            &GameStatusChange {
                to: GameStatus::EnrollmentOpen,
                trigger: GameTrigger::Host,
                actor: Some(host.user_id),
                reason: None,
                at: w.clock.now(),
                expected_approved: None,
            },
        )
        .await
        .unwrap();
    let player = w.user().await;
    let application = w.lobby.apply(player, draft.id, "Latecomers").await;
    assert!(application.is_ok(), "{application:?}");
    // A draft that really is one stays hidden from everyone but its host.
    let hidden = w.lobby.create_game(host, w.new_game(2, 4)).await.unwrap();
    w.games
        .stale
        .lock()
        .unwrap()
        .insert(hidden.id, hidden.clone());
    match w.lobby.apply(player, hidden.id, "Peekers").await {
        Err(error) => assert!(
            matches!(error.kind(), galaxy_core::service::ErrorKind::NotFound),
            "{error:?}"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_approval_renews_the_claim_so_a_failed_registration_is_repaired_not_lost() {
    let w = World::build(
        LobbyConfig {
            race_name_ttl: TimeDelta::days(1),
            ..LobbyConfig::default()
        },
        None,
    );
    let host = w.user().await;
    let game = w.open_game(host, 2, 4).await;
    let other_game = w.open_game(host, 2, 4).await;
    let (ann, bob) = (w.user().await, w.user().await);
    let application = w.lobby.apply(ann, game.id, "Zorgons").await.unwrap();
    // The claim is about to lapse when the host approves, and registering the name
    // after the approval fails (a crash, a store error).
    w.clock.advance(TimeDelta::days(1) - TimeDelta::minutes(1));
    w.race_names
        .fail_next_register
        .store(true, Ordering::SeqCst);
    w.lobby
        .approve(host, game.id, application.id)
        .await
        .unwrap();
    // Past the old claim's end, before the sweeper's repair: Bob wants the name.
    w.clock.advance(TimeDelta::minutes(2));
    assert_eq!(
        kind(w.lobby.apply(bob, other_game.id, "Zorgons").await).1,
        "race_name_taken"
    );
    // The sweeper registers it for Ann once the renewed claim ends.
    w.clock.advance(TimeDelta::days(1));
    LobbySweeper::new(w.lobby.clone())
        .run_until_idle(5)
        .await
        .unwrap();
    let entry = w.name("Zorgons").await.unwrap();
    assert_eq!(
        (entry.owner, entry.status),
        (ann.user_id, RaceNameStatus::Registered)
    );
}

#[tokio::test]
async fn no_application_is_taken_once_the_enrollment_deadline_has_passed() {
    let w = World::new();
    let host = w.user().await;
    let game = w.open_game(host, 2, 10).await;
    let early = w.user().await;
    w.lobby.apply(early, game.id, "Earlybirds").await.unwrap();
    // The deadline passes; the sweeper has not run yet, so the game is still open.
    w.clock.set(game.settings.enrollment_deadline);
    let late = w.user().await;
    let refused = w.lobby.apply(late, game.id, "Latecomers").await;
    assert_eq!(kind(refused), (ErrorKind::Conflict, "not_enrolling"));
    assert_eq!(w.game(game.id).await.status, GameStatus::EnrollmentOpen);
    assert!(w.name("Latecomers").await.is_none(), "no claim was made");
}
