//! Mail rendering through the worker: locale fallback, per-recipient payloads, and
//! payloads that do not fit the template.

use galaxy_core::domain::notification::{NotificationKind, RouteStatus};
use galaxy_core::domain::user::Locale;
use galaxy_core::service::templates::MailTemplates;
use galaxy_core::worker::Worker;
use serde_json::json;

use crate::harness::Harness;

#[tokio::test]
async fn a_locale_without_templates_falls_back_to_its_language_then_to_english() {
    let h = Harness::new();
    let swiss = h.user("urs", "de-CH", true).await;
    let quebec = h.user("luc", "fr-CA", true).await;
    let payload = json!({"game_name": "Orion", "race_name": "Vogons"});
    h.raise(
        NotificationKind::ApplicationApproved,
        "app:1",
        &[&swiss, &quebec],
        payload,
    )
    .await;
    h.worker(3).run_until_idle(10).await.unwrap();
    let mails = h.mails().await;
    let to = |user: &galaxy_core::domain::user::User| {
        mails
            .iter()
            .find(|m| m.mail.to == user.email)
            .unwrap()
            .mail
            .clone()
    };
    let de = to(&swiss);
    assert_eq!(de.locale.as_str(), "de");
    assert_eq!(de.subject, "Du bist dabei: Orion");
    let en = to(&quebec);
    assert_eq!(en.locale.as_str(), "en", "no French templates: English");
    assert_eq!(en.subject, "You are in: Orion");
    assert!(
        en.text_body.contains("You will play as Vogons."),
        "{}",
        en.text_body
    );
}

/// What a payload leaves `null` (no deadline yet, no winner, a host without a race, a
/// report without text, a hidden sender) reads in each recipient's language, never as
/// English pasted into a German mail, nor as nothing.
#[tokio::test]
async fn null_fields_are_worded_in_the_recipients_language() {
    let h = Harness::new();
    let german = h.user("gerd", "de-AT", true).await;
    let english = h.user("emma", "en-GB", true).await;
    let finished = json!({
        "game_name": "Orion", "turn": 9, "winner": null,
        "standings_table": "  #  Race  Score  Status\n  1  Vogons  3  eliminated\n",
        "standings": [{"race": "Vogons", "score": 3.0, "alive": false}],
        "race": null, "report_text": null,
    });
    h.raise(
        NotificationKind::GameFinished,
        "fin:1",
        &[&german, &english],
        finished,
    )
    .await;
    let started = json!({
        "game_name": "Orion", "turn": 1, "deadline": null, "race": null, "report_text": null,
    });
    h.raise(
        NotificationKind::GameStarted,
        "start:1",
        &[&german, &english],
        started,
    )
    .await;
    let message = json!({"game_name": "Orion", "turn": 2, "from": null, "race": "Vogons",
                         "text": "hello"});
    h.raise(
        NotificationKind::RaceMessage,
        "msg:1",
        &[&german, &english],
        message,
    )
    .await;
    h.worker(3).run_until_idle(10).await.unwrap();
    let mails = h.mails().await;
    let text = |user: &galaxy_core::domain::user::User, kind: NotificationKind| {
        let mail = &mails
            .iter()
            .find(|m| m.mail.to == user.email && m.mail.kind == kind.as_str())
            .unwrap()
            .mail;
        format!("{}\n{}", mail.subject, mail.text_body)
    };
    let de_finished = text(&german, NotificationKind::GameFinished);
    assert!(de_finished.contains("niemand"), "{de_finished}");
    assert!(de_finished.contains("kein Berichtstext"), "{de_finished}");
    assert!(
        de_finished.contains("du spielst in diesem Spiel nicht mit"),
        "{de_finished}"
    );
    // The standings table in the reader's words too.
    assert!(
        de_finished.contains("  #  Volk    Punkte  Stand\n  1  Vogons       3  ausgeschieden"),
        "{de_finished}"
    );
    let de_started = text(&german, NotificationKind::GameStarted);
    assert!(
        de_started.contains("bis (noch kein Termin)"),
        "{de_started}"
    );
    let de_message = text(&german, NotificationKind::RaceMessage);
    assert!(de_message.contains("Anonym"), "{de_message}");
    for de in [&de_finished, &de_started, &de_message] {
        for english_word in [
            "nobody",
            "no deadline",
            "Anonymous",
            "no report text",
            "eliminated",
            "Score",
        ] {
            assert!(!de.contains(english_word), "{english_word}: {de}");
        }
    }
    let en_finished = text(&english, NotificationKind::GameFinished);
    assert!(en_finished.contains("Winner: nobody."), "{en_finished}");
    assert!(
        en_finished.contains("  1  Vogons      3  eliminated"),
        "{en_finished}"
    );
    assert!(
        en_finished.contains("you do not play in this game"),
        "{en_finished}"
    );
    let en_started = text(&english, NotificationKind::GameStarted);
    assert!(
        en_started.contains("by (no deadline set yet)"),
        "{en_started}"
    );
    let en_message = text(&english, NotificationKind::RaceMessage);
    assert!(
        en_message.contains("message from Anonymous"),
        "{en_message}"
    );
}

#[tokio::test]
async fn a_kind_missing_in_a_custom_set_falls_back_or_dead_letters_with_a_clear_error() {
    let h = Harness::new();
    let vera = h.user("vera", "de", true).await;
    let mut templates = MailTemplates::builtin();
    let de = Locale::parse("de").unwrap();
    templates.remove(&de, NotificationKind::GameCancelled);
    templates.remove(&de, NotificationKind::EnrollmentClosed);
    templates.remove(&Locale::default(), NotificationKind::EnrollmentClosed);
    h.raise(
        NotificationKind::GameCancelled,
        "game:1:cancelled",
        &[&vera],
        json!({"game_name": "A"}),
    )
    .await;
    h.raise(
        NotificationKind::EnrollmentClosed,
        "game:1:closed",
        &[&vera],
        json!({"game_name": "A"}),
    )
    .await;
    h.worker_with_templates(templates)
        .run_until_idle(10)
        .await
        .unwrap();
    let mails = h.mails().await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].mail.locale.as_str(), "en");
    assert_eq!(mails[0].mail.subject, "A was cancelled");

    // No template at all: retrying cannot help, so the route is dead at once.
    let dead: Vec<_> = h
        .routes()
        .await
        .into_iter()
        .filter(|r| r.status == RouteStatus::DeadLetter)
        .collect();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 1);
    let error = dead[0].last_error.as_deref().unwrap();
    assert!(
        error.contains("no mail template for enrollment_closed"),
        "{error}"
    );
}

#[tokio::test]
async fn payloads_that_do_not_fit_the_template_never_panic() {
    let h = Harness::new();
    let wes = h.user("wes", "en", true).await;
    let deep = (0..200).fold(json!("bottom"), |inner, _| json!({ "x": inner }));
    let payloads = [
        json!(null),
        json!([1, 2, 3]),
        json!("just a string"),
        json!({"game_name": 42, "turn": {"nested": [1, {"a": null}]}, "report_text": null}),
        json!({"game_name": "<script>alert(1)</script>", "report_text": "{{game_name}} & co"}),
        json!({"game_name": deep, "per_recipient": "not an object"}),
        json!({"per_recipient": {wes.id.to_string(): "not an object either"}}),
    ];
    for (i, payload) in payloads.into_iter().enumerate() {
        h.raise(
            NotificationKind::TurnCompleted,
            &format!("turn:{i}"),
            &[&wes],
            payload,
        )
        .await;
    }
    h.worker(3).run_until_idle(20).await.unwrap();
    for route in h.routes().await {
        assert_eq!(route.status, RouteStatus::Delivered, "{route:?}");
    }
    let mails = h.mails().await;
    assert_eq!(mails.len(), 7);
    let by_subject = |s: &str| mails.iter().find(|m| m.mail.subject == s).unwrap();
    // Missing fields render as nothing.
    assert!(
        by_subject(": turn  report")
            .mail
            .text_body
            .contains("Hello wes,")
    );
    // Numbers and objects are written out; null is the locale's word for the field.
    let odd = by_subject(r#"42: turn {"nested":[1,{"a":null}]} report"#);
    assert!(
        odd.mail
            .text_body
            .contains("The report of your race :\n\n(no report text here"),
        "{}",
        odd.mail.text_body
    );
    // Markup is escaped in HTML and placeholders in values stay literal.
    let script = by_subject("<script>alert(1)</script>: turn  report");
    let html = script.mail.html_body.as_deref().unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(html.contains("{{game_name}} &amp; co"), "{html}");
    assert!(script.mail.text_body.contains("{{game_name}} & co"));
    // Push got an object every time.
    assert!(h.push.events().iter().all(|e| e.payload.is_object()));
}

#[tokio::test]
async fn each_player_gets_only_their_own_turn_report() {
    let h = Harness::new();
    let ann = h.user("ann", "en", true).await;
    let bob = h.user("bob", "de", true).await;
    let payload = json!({
        "game_name": "Andromeda",
        "turn": 5,
        "per_recipient": {
            ann.id.to_string(): {"report_text": "Ann: 3 planets"},
            bob.id.to_string(): {"report_text": "Bob: 4 planets"},
        },
    });
    h.raise(
        NotificationKind::TurnCompleted,
        "turn:g:5",
        &[&ann, &bob],
        payload,
    )
    .await;
    h.worker(3).run_until_idle(10).await.unwrap();
    let mails = h.mails().await;
    let body = |user: &galaxy_core::domain::user::User| {
        mails
            .iter()
            .find(|m| m.mail.to == user.email)
            .unwrap()
            .mail
            .text_body
            .clone()
    };
    assert!(body(&ann).contains("Ann: 3 planets") && !body(&ann).contains("Bob:"));
    assert!(body(&bob).contains("Bob: 4 planets") && !body(&bob).contains("Ann:"));
    assert!(body(&bob).contains("Zug 5 von Andromeda"), "{}", body(&bob));
    for event in h.push.events() {
        let text = event.payload.to_string();
        assert!(!text.contains("per_recipient"), "{text}");
        let own = if event.users == vec![ann.id] {
            "Ann:"
        } else {
            "Bob:"
        };
        let report = event.payload["report_text"].as_str().unwrap();
        assert!(report.starts_with(own), "{report}");
        assert_eq!(event.payload["turn"], 5);
    }
}

#[tokio::test]
async fn a_report_too_big_for_a_push_event_is_left_to_the_api() {
    let h = Harness::new();
    let ann = h.user("ann", "en", true).await;
    let bob = h.user("bob", "en", true).await;
    let huge = "x".repeat(galaxy_core::worker::notification::MAX_PUSH_REPORT_BYTES + 1);
    let payload = json!({
        "game_name": "Andromeda",
        "turn": 5,
        "per_recipient": {
            ann.id.to_string(): {"report_text": huge},
            bob.id.to_string(): {"report_text": "Bob: 4 planets"},
        },
    });
    h.raise(
        NotificationKind::TurnCompleted,
        "turn:g:5",
        &[&ann, &bob],
        payload,
    )
    .await;
    h.worker(3).run_until_idle(10).await.unwrap();
    let events = h.push.events();
    let of = |user: &galaxy_core::domain::user::User| {
        events
            .iter()
            .find(|e| e.users == vec![user.id])
            .unwrap()
            .payload
            .clone()
    };
    let ann_event = of(&ann);
    assert!(ann_event.get("report_text").is_none(), "left out");
    assert_eq!(ann_event["report_omitted"], true);
    assert_eq!(ann_event["turn"], 5);
    assert!(ann_event.to_string().len() < 1024);
    assert_eq!(of(&bob)["report_text"], "Bob: 4 planets");
    assert!(of(&bob).get("report_omitted").is_none());
    // The mail still carries the whole report (attached: too long for a mail's body).
    let mails = h.mails().await;
    let ann_mail = mails.iter().find(|m| m.mail.to == ann.email).unwrap();
    let attached = ann_mail.mail.extras.attachment.as_ref().unwrap();
    assert_eq!(
        attached.text,
        "x".repeat(galaxy_core::worker::notification::MAX_PUSH_REPORT_BYTES + 1)
    );
}
