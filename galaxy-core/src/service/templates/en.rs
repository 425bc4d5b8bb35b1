//! English templates: the fallback every other locale falls back to, so every kind has
//! one here.

use super::{StaticLocale, StaticTemplate};
use crate::domain::notification::NotificationKind as K;

/// The English set.
pub(super) const LOCALE: StaticLocale = StaticLocale {
    tag: "en",
    footer: "You get this mail from Galaxy. Mail notifications can be turned off in your \
             profile; login codes are always mailed.",
    words: &[
        ("standings_race", "Race"),
        ("standings_score", "Score"),
        ("standings_status", "Status"),
        ("standings_alive", "alive"),
        ("standings_eliminated", "eliminated"),
        ("game_name", "your game"),
        (
            "refusal_not_in_play",
            "the game takes no orders now (it is {{status}})",
        ),
        ("refusal_not_a_player", "you do not play in this game"),
        (
            "refusal_too_late",
            "this mail arrived before turn {{played}} was played but could not be taken in \
             time; its orders were not applied to turn {{turn}}: send them again if they \
             still stand",
        ),
        (
            "refusal_superseded",
            "orders for turn {{turn}} sent after this mail are in force; this mail's orders \
             were not applied",
        ),
        (
            "refusal_no_orders",
            "no orders found in the mail (quotes and signature are ignored)",
        ),
        (
            "refusal_unreachable",
            "the game could not be reached after {{tries}} tries; send the orders again later",
        ),
        (
            "refusal_too_large",
            "the orders are {{size}} bytes, at most {{max}} are accepted",
        ),
        (
            "refusal_too_many",
            "too many orders submissions for this turn; the orders in force stay, and the \
             next turn takes new ones",
        ),
        (
            "refusal_not_next_turn",
            "turn {{turn}} was played meanwhile; send the orders again for turn {{next}}",
        ),
        (
            "refusal_eliminated",
            "your race {{race}} is out of the game and takes no orders",
        ),
        ("deadline", "(no deadline set yet)"),
        ("winner", "nobody"),
        ("race", "(none: you do not play in this game)"),
        ("report_attached", "attached"),
        (
            "orders_note",
            "Orders by mail: reply to this mail or write to {{address}} (one order per line; quotes and signature are ignored).",
        ),
        ("from", "Anonymous"),
        (
            "report_text",
            "(no report text here: the game's page has what there is)",
        ),
    ],
    templates: &[
        (
            K::LoginCode,
            StaticTemplate {
                subject: "Your Galaxy login code",
                text: "Your Galaxy login code is {{code}}\n\n\
                       It works once, until {{expires_at}} (about {{minutes}} minutes from \
                       now).\n\n\
                       If you did not ask to log in to Galaxy, ignore this mail: \
                       nobody can log in without the code.\n",
                html: "<p>Your Galaxy login code is <strong>{{code}}</strong></p>\n\
                       <p>It works once, until {{expires_at}} (about {{minutes}} minutes \
                       from now).</p>\n\
                       <p>If you did not ask to log in to Galaxy, ignore this mail: \
                       nobody can log in without the code.</p>",
            },
        ),
        (
            K::ApplicationSubmitted,
            StaticTemplate {
                subject: "New application to {{game_name}}",
                text: "Hello {{recipient_name}},\n\n\
                       the race {{race_name}} applied to join your game {{game_name}}.\n\
                       Approve or reject the application in the lobby.\n",
                html: "<p>Hello {{recipient_name}},</p>\n\
                       <p>the race <strong>{{race_name}}</strong> applied to join your game \
                       <strong>{{game_name}}</strong>.</p>\n\
                       <p>Approve or reject the application in the lobby.</p>",
            },
        ),
        (
            K::ApplicationApproved,
            StaticTemplate {
                subject: "You are in: {{game_name}}",
                text: "Hello {{recipient_name}},\n\n\
                       your application to {{game_name}} was approved. You will play \
                       as {{race_name}}.\nWe will tell you when the game starts.\n",
                html: "<p>Hello {{recipient_name}},</p>\n\
                       <p>your application to <strong>{{game_name}}</strong> was approved. \
                       You will play as <strong>{{race_name}}</strong>.</p>\n\
                       <p>We will tell you when the game starts.</p>",
            },
        ),
        (
            K::ApplicationRejected,
            StaticTemplate {
                subject: "Application to {{game_name}} not accepted",
                text: "Hello {{recipient_name}},\n\n\
                       your application to {{game_name}} as {{race_name}} was not \
                       accepted by the host.\nThere are other games open in the lobby.\n",
                html: "<p>Hello {{recipient_name}},</p>\n\
                       <p>your application to <strong>{{game_name}}</strong> as \
                       {{race_name}} was not accepted by the host.</p>\n\
                       <p>There are other games open in the lobby.</p>",
            },
        ),
        (
            K::EnrollmentClosed,
            StaticTemplate {
                subject: "Enrollment closed: {{game_name}}",
                text: "Hello {{recipient_name}},\n\n\
                       enrollment for {{game_name}} is closed with {{approved_count}} \
                       players. The game starts soon.\n",
                html: "<p>Hello {{recipient_name}},</p>\n\
                       <p>enrollment for <strong>{{game_name}}</strong> is closed with \
                       {{approved_count}} players. The game starts soon.</p>",
            },
        ),
        (
            K::GameStarted,
            StaticTemplate {
                subject: "{{game_name}} has started",
                text: "Hello {{recipient_name}},\n\n\
                       the game {{game_name}} has started. Your first orders are due \
                       for turn {{turn}}, by {{deadline}}.\n\n\
                       Your race {{race}} at the start:\n\n\
                       {{report_text}}\n",
                html: "<p>Hello {{recipient_name}},</p>\n\
                       <p>the game <strong>{{game_name}}</strong> has started. Your first \
                       orders are due for turn {{turn}}, by <strong>{{deadline}}</strong>.</p>\n\
                       <p>Your race {{race}} at the start:</p>\n<pre>{{report_text}}</pre>",
            },
        ),
        (
            K::GameCancelled,
            StaticTemplate {
                subject: "{{game_name}} was cancelled",
                text: "Hello {{recipient_name}},\n\n\
                       the game {{game_name}} was cancelled: no more turns will be played. \
                       The reports of any turns played stay readable on the game's page.\n",
                html: "<p>Hello {{recipient_name}},</p>\n\
                       <p>the game <strong>{{game_name}}</strong> was cancelled: no more \
                       turns will be played. The reports of any turns played stay readable \
                       on the game's page.</p>",
            },
        ),
        (
            K::GameStartFailed,
            StaticTemplate {
                subject: "{{game_name}} could not start",
                text: "The game {{game_name}} ({{game_id}}) could not start.\n\n\
                       Reason: {{reason}}\n\nAn admin can retry the start.\n",
                html: "<p>The game <strong>{{game_name}}</strong> ({{game_id}}) could not \
                       start.</p>\n<p>Reason: {{reason}}</p>\n\
                       <p>An admin can retry the start.</p>",
            },
        ),
        (
            K::GamePausedAfterStart,
            StaticTemplate {
                subject: "{{game_name}} is paused after its start",
                text: "The engine of {{game_name}} ({{game_id}}) runs but did not \
                       register the game, so it is paused.\n\nReason: {{reason}}\n",
                html: "<p>The engine of <strong>{{game_name}}</strong> ({{game_id}}) runs \
                       but did not register the game, so it is paused.</p>\n\
                       <p>Reason: {{reason}}</p>",
            },
        ),
        (
            K::TurnCompleted,
            StaticTemplate {
                subject: "{{game_name}}: turn {{turn}} report",
                text: "Hello {{recipient_name}},\n\n\
                       turn {{turn}} of {{game_name}} has run. Orders for turn \
                       {{next_turn}} are due by {{deadline}}. The report of your race \
                       {{race}}:\n\n\
                       {{report_text}}\n",
                html: "<p>Hello {{recipient_name}},</p>\n\
                       <p>turn {{turn}} of <strong>{{game_name}}</strong> has run. Orders \
                       for turn {{next_turn}} are due by <strong>{{deadline}}</strong>. The \
                       report of your race {{race}}:</p>\n<pre>{{report_text}}</pre>",
            },
        ),
        (
            K::GameFinished,
            StaticTemplate {
                subject: "{{game_name}} is over",
                text: "Hello {{recipient_name}},\n\n\
                       {{game_name}} ended after turn {{turn}}. Winner: {{winner}}.\n\n\
                       Final standings:\n\n\
                       {{standings_table}}\n\
                       The final report of your race {{race}}:\n\n\
                       {{report_text}}\n",
                html: "<p>Hello {{recipient_name}},</p>\n\
                       <p><strong>{{game_name}}</strong> ended after turn {{turn}}. \
                       Winner: <strong>{{winner}}</strong>.</p>\n\
                       <p>Final standings:</p>\n<pre>{{standings_table}}</pre>\n\
                       <p>The final report of your race {{race}}:</p>\n\
                       <pre>{{report_text}}</pre>",
            },
        ),
        (
            K::RuntimeHealthAlert,
            StaticTemplate {
                subject: "Runtime alert: {{kind}} in {{game}}",
                text: "Health event {{kind}} in the game {{game}} ({{game_id}}) at \
                       {{occurred}}.\n\n\
                       Detail: {{detail}}\n",
                html: "<p>Health event <strong>{{kind}}</strong> in the game \
                       <strong>{{game}}</strong> ({{game_id}}) at {{occurred}}.</p>\n\
                       <p>Detail: <code>{{detail}}</code></p>",
            },
        ),
        (
            K::TurnReminder,
            StaticTemplate {
                subject: "{{game_name}}: orders for turn {{turn}} due by {{deadline}}",
                text: "Hello {{recipient_name}},\n\n\
                       the orders of your race {{race}} for turn {{turn}} of {{game_name}} \
                       are not in yet. They are due by {{deadline}} (in {{before}}).\n",
                html: "<p>Hello {{recipient_name}},</p>\n\
                       <p>the orders of your race {{race}} for turn {{turn}} of \
                       <strong>{{game_name}}</strong> are not in yet. They are due by \
                       <strong>{{deadline}}</strong> (in {{before}}).</p>",
            },
        ),
        (
            K::RaceIdle,
            StaticTemplate {
                subject: "{{game_name}}: race {{race}} is idle",
                text: "Hello {{recipient_name}},\n\n\
                       the race {{race}} in {{game_name}} missed {{missed_turns}} turns in \
                       a row and is now idle; the engine plays it without orders. Orders \
                       from its player make it active again; the host may offer its seat \
                       to a replacement player.\n",
                html: "<p>Hello {{recipient_name}},</p>\n\
                       <p>the race {{race}} in <strong>{{game_name}}</strong> missed \
                       {{missed_turns}} turns in a row and is now idle; the engine plays it \
                       without orders. Orders from its player make it active again; the \
                       host may offer its seat to a replacement player.</p>",
            },
        ),
        (
            K::SeatChanged,
            StaticTemplate {
                subject: "{{game_name}}: race {{race}} has a new player",
                text: "Hello {{recipient_name}},\n\n\
                       the race {{race}} in {{game_name}} is now played by a replacement \
                       player, from turn {{turn}} on.\n",
                html: "<p>Hello {{recipient_name}},</p>\n\
                       <p>the race {{race}} in <strong>{{game_name}}</strong> is now played \
                       by a replacement player, from turn {{turn}} on.</p>",
            },
        ),
        (
            K::RaceMessage,
            StaticTemplate {
                subject: "{{game_name}}: message from {{from}}",
                text: "Hello {{recipient_name}},\n\n\
                       {{from}} wrote to your race {{race}} in {{game_name}} (turn \
                       {{turn}}):\n\n{{text}}\n",
                html: "<p>Hello {{recipient_name}},</p>\n\
                       <p>{{from}} wrote to your race {{race}} in \
                       <strong>{{game_name}}</strong> (turn {{turn}}):</p>\n\
                       <pre>{{text}}</pre>",
            },
        ),
        (
            K::OrdersAccepted,
            StaticTemplate {
                subject: "{{game_name}}: orders for turn {{turn}} accepted",
                text: "Hello {{recipient_name}},\n\n\
                       your orders for turn {{turn}} of {{game_name}} were accepted \
                       ({{order_count}} lines read). They replace any orders you sent \
                       for this turn before. The turn runs at {{deadline}}.\n\n\
                       To change them, reply to this mail with the complete new orders.\n",
                html: "<p>Hello {{recipient_name}},</p>\n\
                       <p>your orders for turn {{turn}} of <strong>{{game_name}}</strong> \
                       were accepted ({{order_count}} lines read). They replace any orders \
                       you sent for this turn before. The turn runs at \
                       <strong>{{deadline}}</strong>.</p>\n\
                       <p>To change them, reply to this mail with the complete new orders.</p>",
            },
        ),
        (
            K::OrdersRejected,
            StaticTemplate {
                subject: "{{game_name}}: orders for turn {{turn}} NOT accepted",
                text: "Hello {{recipient_name}},\n\n\
                       your orders for turn {{turn}} of {{game_name}} were not accepted; \
                       orders you sent before stay in force. Why:\n\n\
                       {{errors}}\n\
                       The orders as read, numbered as the reasons count lines:\n\n\
                       {{orders_read}}\n\
                       The turn runs at {{deadline}}. Reply to this mail with corrected \
                       orders.\n",
                html: "<p>Hello {{recipient_name}},</p>\n\
                       <p>your orders for turn {{turn}} of <strong>{{game_name}}</strong> \
                       were <strong>not accepted</strong>; orders you sent before stay in \
                       force. Why:</p>\n<pre>{{errors}}</pre>\n\
                       <p>The orders as read, numbered as the reasons count lines:</p>\n\
                       <pre>{{orders_read}}</pre>\n\
                       <p>The turn runs at <strong>{{deadline}}</strong>. Reply to this \
                       mail with corrected orders.</p>",
            },
        ),
        (
            K::OrdersRefused,
            StaticTemplate {
                subject: "Your mail to Galaxy was not taken",
                text: "Hello {{recipient_name}},\n\n\
                       Galaxy received a mail from {{sender}} that it cannot take as \
                       orders. Orders are taken only from the address of your Galaxy \
                       account, sent to your orders address of the game, which the \
                       game's mails and \"my games\" show. If a mail from another \
                       address reached your orders address and was not yours, someone \
                       knows that address: the game's page gives you a new one.\n\n\
                       You get at most one such note an hour.\n",
                html: "<p>Hello {{recipient_name}},</p>\n\
                       <p>Galaxy received a mail from {{sender}} that it cannot take as \
                       orders. Orders are taken only from the address of your Galaxy \
                       account, sent to your orders address of the game, which the \
                       game's mails and \"my games\" show. If a mail from another \
                       address reached your orders address and was not yours, someone \
                       knows that address: the game's page gives you a new one.</p>\n\
                       <p>You get at most one such note an hour.</p>",
            },
        ),
        (
            K::OrdersNotTaken,
            StaticTemplate {
                subject: "{{game_name}}: your orders were NOT taken",
                text: "Hello {{recipient_name}},\n\n\
                       the orders in your mail for {{game_name}} were not taken: nothing \
                       was sent to the game, and orders you sent before stay as they \
                       were. Why:\n\n\
                       {{reason}}\n\n\
                       The orders as read:\n\n\
                       {{orders_read}}\n",
                html: "<p>Hello {{recipient_name}},</p>\n\
                       <p>the orders in your mail for <strong>{{game_name}}</strong> were \
                       <strong>not taken</strong>: nothing was sent to the game, and \
                       orders you sent before stay as they were. Why:</p>\n\
                       <p>{{reason}}</p>\n\
                       <p>The orders as read:</p>\n<pre>{{orders_read}}</pre>",
            },
        ),
    ],
};
