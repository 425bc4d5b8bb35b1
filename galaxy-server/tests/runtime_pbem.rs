//! The play-by-email habits end to end, in dev mode on the process runtime with the real
//! reference engine: a reminder reaches only the player without orders (by mail), the
//! turn runs early once every player is ready, a race that missed a turn goes idle and
//! its seat changes hands (the newcomer reads the race's archived reports, the old player
//! loses access), and messages reach only their recipients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lifecycle_support;
mod runtime_support;

use std::time::Duration;

use chrono::{TimeDelta, Timelike, Utc};
use lifecycle_support::eventually;
use runtime_support::{Caller, force, mails_to, process_vars, record, run_a_game_with};
use serde_json::{Value, json};

async fn call(
    caller: &Caller,
    method: &str,
    path: &str,
    body: Option<Value>,
    status: u16,
) -> Value {
    let (got, json) = caller.request(method, path, body).await;
    assert_eq!(got, status, "{method} {path}: {json}");
    json
}

fn race_state(game: &Value, race: &str) -> (bool, String) {
    let races = game["races"].as_array().cloned().unwrap_or_default();
    let entry = races
        .iter()
        .find(|r| r["race"] == race)
        .cloned()
        .unwrap_or(Value::Null);
    (
        entry["ready"].as_bool().unwrap_or(false),
        entry["state"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pbem_game_reminds_runs_early_hands_a_seat_on_and_relays_messages() {
    // The first deadline three to four minutes from now (the schedule fires on the minute),
    // a reminder two minutes before it: the
    // players have a minute to send orders before the reminder is owed.
    let deadline = Utc::now() + TimeDelta::minutes(4);
    let schedule = format!("{} {} * * *", deadline.minute(), deadline.hour());
    let seats = [
        ("ann@example.org", "Aldebarans"),
        ("bob@example.org", "Betelgeusians"),
        ("cy@example.org", "Capellans"),
    ];
    let extra = json!({
        "turn_schedule": schedule,
        "reminders": ["2m"],
        "idle_after": 1,
    });
    let running = run_a_game_with(&process_vars(), &seats, extra).await;
    let games = format!("/api/v1/user/games/{}", running.game);
    let [(ann, _), (bob, _), (cy, _)] = [
        running.players[0].clone(),
        running.players[1].clone(),
        running.players[2].clone(),
    ];
    let view = running.game_view().await;
    assert_eq!(view["settings"]["reminders"], json!(["2m"]));
    assert_eq!(view["settings"]["early_turn"], true);
    assert_eq!(view["settings"]["min_turn_gap"], "1h");
    assert_eq!(race_state(&view, "Capellans"), (false, "active".to_owned()));

    // Ann and Bob send orders for turn 1; Cy does not.
    for player in [&ann, &bob] {
        let verdict = call(
            player,
            "PUT",
            &format!("{games}/orders"),
            Some(json!({"turn": 1, "orders": []})),
            200,
        )
        .await;
        assert_eq!(verdict["accepted"], true, "{verdict}");
    }
    let view = running.game_view().await;
    assert_eq!(race_state(&view, "Aldebarans"), (true, "active".to_owned()));
    assert_eq!(
        record(&running.admin, &running.game).await["current_turn"],
        0,
        "Cy holds it"
    );

    // The reminder: Cy gets one mail, Ann and Bob none.
    eventually(Duration::from_secs(150), "Cy's reminder mail", || async {
        let mails = mails_to(&running.mail, "cy@example.org");
        mails
            .iter()
            .any(|m| m.kind == "turn_reminder")
            .then_some(())
    })
    .await;
    let reminder = mails_to(&running.mail, "cy@example.org")
        .into_iter()
        .find(|m| m.kind == "turn_reminder")
        .unwrap();
    assert!(reminder.text.contains("Capellans"), "{}", reminder.text);
    for email in ["ann@example.org", "bob@example.org"] {
        let got = mails_to(&running.mail, email);
        assert!(
            got.iter().all(|m| m.kind != "turn_reminder"),
            "{email}: {got:?}"
        );
    }

    // Cy is ready without orders: the turn runs early, and the next deadline keeps the gap.
    call(
        &cy,
        "POST",
        &format!("{games}/ready"),
        Some(json!({"turn": 2})),
        422,
    )
    .await;
    call(
        &cy,
        "POST",
        &format!("{games}/ready"),
        Some(json!({"turn": 1})),
        204,
    )
    .await;
    let early = eventually(Duration::from_secs(20), "the early turn", || async {
        let record = record(&running.admin, &running.game).await;
        (record["current_turn"] == 1).then_some(record)
    })
    .await;
    let next: chrono::DateTime<Utc> = early["next_turn_at"].as_str().unwrap().parse().unwrap();
    assert!(next >= Utc::now() + TimeDelta::minutes(59), "{next}");
    assert!(next > deadline, "the early turn came before the schedule");

    // Turn 2: Cy sends nothing; the admin forces the turn; Cy misses it and goes idle.
    for player in [&ann, &bob] {
        call(
            player,
            "PUT",
            &format!("{games}/orders"),
            Some(json!({"turn": 2, "orders": []})),
            200,
        )
        .await;
    }
    assert_eq!(force(&running.admin, &running.game).await, 2);
    eventually(Duration::from_secs(20), "Cy idle", || async {
        let view = running.game_view().await;
        (race_state(&view, "Capellans").1 == "idle").then_some(())
    })
    .await;
    eventually(Duration::from_secs(20), "the idle mail to Cy", || async {
        let mails = mails_to(&running.mail, "cy@example.org");
        mails.iter().any(|m| m.kind == "race_idle").then_some(())
    })
    .await;

    // The seat: 403 for a non-host, 409 on an active race; the host opens Cy's.
    let seat = |race: &str| format!("{games}/seats/{race}");
    call(
        &bob,
        "POST",
        &format!("{}/open", seat("Capellans")),
        None,
        403,
    )
    .await;
    call(
        &ann,
        "POST",
        &format!("{}/open", seat("Betelgeusians")),
        None,
        409,
    )
    .await;
    call(
        &ann,
        "POST",
        &format!("{}/open", seat("Capellans")),
        None,
        200,
    )
    .await;
    let public = call(
        &running.outsider,
        "GET",
        "/api/v1/public/games?open_seats=true",
        None,
        200,
    )
    .await;
    let listed = public["items"].as_array().unwrap();
    assert!(
        listed
            .iter()
            .any(|g| g["id"] == running.game.as_str() && g["open_seats"] == json!(["Capellans"])),
        "{public}"
    );
    // The outsider finds it from the lobby's page of open seats.
    let (_, lobby) = running.outsider.page("/").await;
    assert!(lobby.contains("href=\"/?seats=1\""), "{lobby}");
    let (status, seats) = running.outsider.page("/?seats=1").await;
    assert_eq!(status, 200);
    let row = seats
        .split("<tr>")
        .find(|row| row.contains(&format!("href=\"/games/{}\"", running.game)))
        .unwrap_or_else(|| panic!("the game is not listed: {seats}"));
    assert!(row.contains("<td>Capellans</td>"), "{row}");
    // The outsider applies from the game page, which then shows the application waiting
    // for the host instead of offering to apply again.
    let page = format!("/games/{}", running.game);
    let apply = format!("{page}/seats/Capellans/apply");
    let (_, before) = running.outsider.page(&page).await;
    assert!(before.contains(&format!("action=\"{apply}\"")), "{before}");
    let (status, _) = running.outsider.post_form(&page, &apply, &[]).await;
    assert_eq!(status, 303);
    let (_, after) = running.outsider.page(&page).await;
    assert!(!after.contains(&format!("action=\"{apply}\"")), "{after}");
    assert!(after.contains("you applied; the host decides"), "{after}");
    let applications = call(
        &ann,
        "GET",
        &format!("{}/applications", seat("Capellans")),
        None,
        200,
    )
    .await;
    let id = applications["items"][0]["id"].as_str().unwrap();
    call(
        &ann,
        "POST",
        &format!("{}/applications/{id}/approve", seat("Capellans")),
        None,
        200,
    )
    .await;
    // The newcomer plays Capellans with its archived reports; Cy lost access.
    let report = call(
        &running.outsider,
        "GET",
        &format!("{games}/reports/1"),
        None,
        200,
    )
    .await;
    assert_eq!(report["race"], "Capellans");
    call(&cy, "GET", &format!("{games}/reports/1"), None, 404).await;
    call(
        &cy,
        "PUT",
        &format!("{games}/orders"),
        Some(json!({"turn": 3, "orders": []})),
        404,
    )
    .await;
    let verdict = call(
        &running.outsider,
        "PUT",
        &format!("{games}/orders"),
        Some(json!({"turn": 3, "orders": []})),
        200,
    )
    .await;
    assert_eq!(verdict["accepted"], true);

    // Messages: only their recipients read them.
    call(
        &ann,
        "POST",
        &format!("{games}/messages"),
        Some(json!({"to": ["Betelgeusians"], "text": "secret pact"})),
        201,
    )
    .await;
    call(
        &bob,
        "POST",
        &format!("{games}/messages"),
        Some(json!({"to": "all", "text": "hello galaxy"})),
        201,
    )
    .await;
    for (to, text) in [
        (json!(["Nobody"]), "x"),
        (json!(["Aldebarans"]), "only me"),
        (json!("all"), ""),
    ] {
        call(
            &ann,
            "POST",
            &format!("{games}/messages"),
            Some(json!({"to": to, "text": text})),
            422,
        )
        .await;
    }
    let texts = |page: Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect()
    };
    let of = |who: &Caller| {
        let who = who.clone();
        let path = format!("{games}/messages");
        async move { call(&who, "GET", &path, None, 200).await }
    };
    assert_eq!(texts(of(&ann).await), ["hello galaxy", "secret pact"]);
    assert_eq!(texts(of(&bob).await), ["hello galaxy", "secret pact"]);
    assert_eq!(texts(of(&running.outsider).await), ["hello galaxy"]);
    call(&cy, "GET", &format!("{games}/messages"), None, 404).await;
    call(
        &running.admin,
        "GET",
        &format!("{games}/messages"),
        None,
        404,
    )
    .await;
    eventually(Duration::from_secs(20), "Bob's message mail", || async {
        let mails = mails_to(&running.mail, "bob@example.org");
        mails
            .iter()
            .any(|m| m.kind == "race_message" && m.text.contains("secret pact"))
            .then_some(())
    })
    .await;
    eventually(
        Duration::from_secs(20),
        "the newcomer's message mail",
        || async {
            let mails = mails_to(&running.mail, "outsider@example.org");
            mails.iter().any(|m| m.kind == "race_message").then_some(())
        },
    )
    .await;
    for email in ["outsider@example.org", "cy@example.org", "ann@example.org"] {
        let mails = mails_to(&running.mail, email);
        assert!(
            mails.iter().all(|m| !m.text.contains("secret pact")),
            "{email}: {mails:?}"
        );
    }
    running.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_games_asks_for_orders_only_from_a_race_that_owes_them() {
    let seats = [
        ("ann@example.org", "Aldebarans"),
        ("bob@example.org", "Betelgeusians"),
    ];
    // A game without vacation turns and without early turns (turn 1 waits).
    let extra = json!({"vacation_turns": 0, "early_turn": false});
    let running = run_a_game_with(&process_vars(), &seats, extra).await;
    let games = format!("/api/v1/user/games/{}", running.game);
    let page = format!("/games/{}", running.game);
    let [(ann, _), (bob, _)] = [running.players[0].clone(), running.players[1].clone()];
    for player in [&ann, &bob] {
        let (status, mine) = player.page("/my").await;
        assert_eq!(status, 200, "{mine}");
        assert!(mine.contains("badge due"), "orders owed: {mine}");
        // No vacation form in a game without vacation turns.
        let (_, game) = player.page(&page).await;
        assert!(game.contains("id=\"reports\""), "{game}");
        assert!(!game.contains("/vacation\""), "{game}");
    }
    // Ann marks herself ready without orders: nothing is owed any more.
    call(
        &ann,
        "POST",
        &format!("{games}/ready"),
        Some(json!({"turn": 1})),
        204,
    )
    .await;
    let (_, mine) = ann.page("/my").await;
    assert!(!mine.contains("badge due"), "ready without orders: {mine}");
    let (_, theirs) = bob.page("/my").await;
    assert!(theirs.contains("badge due"), "{theirs}");
    // A message the service refuses (4096 characters at most) comes back in the form
    // with the reason, not lost to an error page.
    let long = "ж".repeat(4097);
    let action = format!("{page}/messages");
    let (status, html) = bob
        .post_form(&page, &action, &[("to", "*"), ("text", long.as_str())])
        .await;
    assert_eq!(status, 422, "{html}");
    // Marked as a form's answer: a live update does not reload the page under it.
    assert!(
        html.contains("id=\"message-refused\" data-answer=\"\""),
        "{html}"
    );
    assert!(html.contains(&long), "the text is kept");
    // Beyond the 50 newest messages the page links to older ones (26 from Ann and 25
    // from Bob, to every race, within each sender's 30 an hour), and back.
    for (player, n) in [(&ann, 26), (&bob, 25)] {
        for i in 0..n {
            let text = format!("note {i} of {}", if n == 26 { "ann" } else { "bob" });
            let body = json!({"to": "all", "text": text});
            call(
                player,
                "POST",
                &format!("{games}/messages"),
                Some(body),
                201,
            )
            .await;
        }
    }
    let (_, newest) = ann.page(&page).await;
    assert!(newest.contains("note 24 of bob"), "{newest}");
    assert!(
        !newest.contains("note 0 of ann<"),
        "the oldest is not among the 50"
    );
    let marker = "id=\"older-messages\" href=\"";
    let at = newest.find(marker).expect("a link to older messages") + marker.len();
    let link: String = newest[at..].chars().take_while(|c| *c != '"').collect();
    let link = link.replace("&amp;", "&");
    let (status, older) = ann.page(&link).await;
    assert_eq!(status, 200, "{older}");
    assert!(older.contains("note 0 of ann<"), "{older}");
    assert!(!older.contains("id=\"older-messages\""), "{older}");
    assert!(
        older.contains(&format!("href=\"{page}#messages\"")),
        "{older}"
    );
    // A cursor that names no message: the newest, not an error.
    let (status, garbled) = ann.page(&format!("{page}?messages_after=garbage")).await;
    assert_eq!(status, 200, "{garbled}");
    assert!(garbled.contains("id=\"older-messages\""), "{garbled}");
    running.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vacation_form_offers_what_is_left_of_the_budget() {
    let seats = [
        ("ann@example.org", "Aldebarans"),
        ("bob@example.org", "Betelgeusians"),
    ];
    // Two vacation turns per player (the default); turn 1 waits for the schedule.
    let extra = json!({"early_turn": false});
    let running = run_a_game_with(&process_vars(), &seats, extra).await;
    let games = format!("/api/v1/user/games/{}", running.game);
    let page = format!("/games/{}", running.game);
    let ann = running.players[0].0.clone();
    let fresh = call(&ann, "GET", &format!("{games}/vacation"), None, 200).await;
    assert_eq!(
        fresh,
        json!({"from_turn": null, "until_turn": null, "used": 0, "left": 2})
    );
    let (_, html) = ann.page(&page).await;
    assert!(html.contains("max=\"2\""), "{html}");
    assert!(html.contains("Vacation turns left: 2 of 2."), "{html}");
    // One turn booked on the page: one left, and the form offers only that.
    let action = format!("{page}/vacation");
    let (status, _) = ann.post_form(&page, &action, &[("turns", "1")]).await;
    assert_eq!(status, 303);
    let (_, html) = ann.page(&page).await;
    assert!(html.contains("id=\"vacation-booked\""), "{html}");
    assert!(html.contains("max=\"1\""), "{html}");
    assert!(html.contains("Vacation turns left: 1 of 2."), "{html}");
    // The last one by the API: the budget is spent, and the page offers no form.
    let booked = call(
        &ann,
        "POST",
        &format!("{games}/vacation"),
        Some(json!({"turns": 1})),
        200,
    )
    .await;
    assert_eq!(
        booked,
        json!({"from_turn": 1, "until_turn": 2, "used": 2, "left": 0})
    );
    let (_, html) = ann.page(&page).await;
    assert!(!html.contains(&format!("action=\"{action}\"")), "{html}");
    assert!(html.contains("Vacation turns left: 0 of 2."), "{html}");
    let spent = Some(json!({"turns": 1}));
    call(&ann, "POST", &format!("{games}/vacation"), spent, 422).await;
    running.shut_down().await;
}
