//! German templates.

use super::{StaticLocale, StaticTemplate};
use crate::domain::notification::NotificationKind as K;

/// The German set.
pub(super) const LOCALE: StaticLocale = StaticLocale {
    tag: "de",
    footer: "Diese Mail kommt von Galaxy. Mail-Benachrichtigungen lassen sich im Profil \
             abschalten; Anmeldecodes werden immer gemailt.",
    words: &[
        ("standings_race", "Volk"),
        ("standings_score", "Punkte"),
        ("standings_status", "Stand"),
        ("standings_alive", "im Spiel"),
        ("standings_eliminated", "ausgeschieden"),
        ("game_name", "dein Spiel"),
        (
            "refusal_not_in_play",
            "das Spiel nimmt in seinem jetzigen Stand keine Befehle an",
        ),
        (
            "refusal_not_a_player",
            "du spielst in diesem Spiel nicht mit",
        ),
        (
            "refusal_too_late",
            "diese Mail kam an, bevor Zug {{played}} lief, konnte aber nicht rechtzeitig \
             angenommen werden; ihre Befehle gelten nicht für Zug {{turn}}: sende sie noch \
             einmal, wenn sie noch gelten",
        ),
        (
            "refusal_superseded",
            "Befehle für Zug {{turn}}, die nach dieser Mail gesendet wurden, gelten; die \
             Befehle dieser Mail wurden nicht angewandt",
        ),
        (
            "refusal_no_orders",
            "keine Befehle in der Mail gefunden (Zitate und Signatur werden ignoriert)",
        ),
        (
            "refusal_unreachable",
            "das Spiel war nach {{tries}} Versuchen nicht erreichbar; sende die Befehle später \
             noch einmal",
        ),
        (
            "refusal_too_large",
            "die Befehle sind {{size}} Bytes groß, höchstens {{max}} werden angenommen",
        ),
        (
            "refusal_too_many",
            "zu viele Befehlssendungen für diesen Zug; die geltenden Befehle bleiben, und der \
             nächste Zug nimmt neue an",
        ),
        (
            "refusal_not_next_turn",
            "Zug {{turn}} wurde inzwischen gespielt; sende die Befehle noch einmal für Zug \
             {{next}}",
        ),
        (
            "refusal_eliminated",
            "dein Volk {{race}} ist aus dem Spiel ausgeschieden und nimmt keine Befehle mehr an",
        ),
        ("deadline", "(noch kein Termin)"),
        ("winner", "niemand"),
        ("race", "(keins: du spielst in diesem Spiel nicht mit)"),
        ("report_attached", "im Anhang"),
        (
            "orders_note",
            "Befehle per Mail: antworte auf diese Mail oder schreibe an {{address}} (eine Zeile pro Befehl; Zitate und Signatur werden ignoriert).",
        ),
        ("from", "Anonym"),
        (
            "report_text",
            "(hier kein Berichtstext: die Seite des Spiels zeigt, was es gibt)",
        ),
    ],
    templates: &[
        (
            K::LoginCode,
            StaticTemplate {
                subject: "Dein Galaxy-Anmeldecode",
                text: "Dein Galaxy-Anmeldecode lautet {{code}}\n\n\
                       Er gilt einmal, bis {{expires_at}} (etwa {{minutes}} Minuten ab \
                       jetzt).\n\n\
                       Wenn du dich nicht bei Galaxy anmelden wolltest, ignoriere diese \
                       Mail: ohne den Code kann sich niemand anmelden.\n",
                html: "<p>Dein Galaxy-Anmeldecode lautet <strong>{{code}}</strong></p>\n\
                       <p>Er gilt einmal, bis {{expires_at}} (etwa {{minutes}} Minuten ab \
                       jetzt).</p>\n\
                       <p>Wenn du dich nicht bei Galaxy anmelden wolltest, ignoriere diese \
                       Mail: ohne den Code kann sich niemand anmelden.</p>",
            },
        ),
        (
            K::ApplicationSubmitted,
            StaticTemplate {
                subject: "Neue Bewerbung für {{game_name}}",
                text: "Hallo {{recipient_name}},\n\n\
                       das Volk {{race_name}} möchte deinem Spiel {{game_name}} beitreten.\n\
                       Nimm die Bewerbung in der Lobby an oder lehne sie ab.\n",
                html: "<p>Hallo {{recipient_name}},</p>\n\
                       <p>das Volk <strong>{{race_name}}</strong> möchte deinem Spiel \
                       <strong>{{game_name}}</strong> beitreten.</p>\n\
                       <p>Nimm die Bewerbung in der Lobby an oder lehne sie ab.</p>",
            },
        ),
        (
            K::ApplicationApproved,
            StaticTemplate {
                subject: "Du bist dabei: {{game_name}}",
                text: "Hallo {{recipient_name}},\n\n\
                       deine Bewerbung für {{game_name}} wurde angenommen. Du spielst \
                       als {{race_name}}.\nWir melden uns, sobald das Spiel beginnt.\n",
                html: "<p>Hallo {{recipient_name}},</p>\n\
                       <p>deine Bewerbung für <strong>{{game_name}}</strong> wurde \
                       angenommen. Du spielst als <strong>{{race_name}}</strong>.</p>\n\
                       <p>Wir melden uns, sobald das Spiel beginnt.</p>",
            },
        ),
        (
            K::ApplicationRejected,
            StaticTemplate {
                subject: "Bewerbung für {{game_name}} nicht angenommen",
                text: "Hallo {{recipient_name}},\n\n\
                       deine Bewerbung für {{game_name}} als {{race_name}} wurde vom \
                       Gastgeber nicht angenommen.\nIn der Lobby sind weitere Spiele offen.\n",
                html: "<p>Hallo {{recipient_name}},</p>\n\
                       <p>deine Bewerbung für <strong>{{game_name}}</strong> als \
                       {{race_name}} wurde vom Gastgeber nicht angenommen.</p>\n\
                       <p>In der Lobby sind weitere Spiele offen.</p>",
            },
        ),
        (
            K::EnrollmentClosed,
            StaticTemplate {
                subject: "Anmeldung geschlossen: {{game_name}}",
                text: "Hallo {{recipient_name}},\n\n\
                       die Anmeldung für {{game_name}} ist mit {{approved_count}} \
                       Spielern geschlossen. Das Spiel beginnt bald.\n",
                html: "<p>Hallo {{recipient_name}},</p>\n\
                       <p>die Anmeldung für <strong>{{game_name}}</strong> ist mit \
                       {{approved_count}} Spielern geschlossen. Das Spiel beginnt bald.</p>",
            },
        ),
        (
            K::GameStarted,
            StaticTemplate {
                subject: "{{game_name}} hat begonnen",
                text: "Hallo {{recipient_name}},\n\n\
                       das Spiel {{game_name}} hat begonnen. Deine ersten Befehle sind \
                       für Zug {{turn}} fällig, bis {{deadline}}.\n\n\
                       Dein Volk {{race}} zu Beginn:\n\n\
                       {{report_text}}\n",
                html: "<p>Hallo {{recipient_name}},</p>\n\
                       <p>das Spiel <strong>{{game_name}}</strong> hat begonnen. Deine \
                       ersten Befehle sind für Zug {{turn}} fällig, bis \
                       <strong>{{deadline}}</strong>.</p>\n\
                       <p>Dein Volk {{race}} zu Beginn:</p>\n<pre>{{report_text}}</pre>",
            },
        ),
        (
            K::GameCancelled,
            StaticTemplate {
                subject: "{{game_name}} wurde abgesagt",
                text: "Hallo {{recipient_name}},\n\n\
                       das Spiel {{game_name}} wurde abgesagt: Es werden keine Züge mehr \
                       gespielt. Die Berichte gespielter Züge bleiben auf der Seite des \
                       Spiels lesbar.\n",
                html: "<p>Hallo {{recipient_name}},</p>\n\
                       <p>das Spiel <strong>{{game_name}}</strong> wurde abgesagt: Es werden \
                       keine Züge mehr gespielt. Die Berichte gespielter Züge bleiben auf \
                       der Seite des Spiels lesbar.</p>",
            },
        ),
        (
            K::GameStartFailed,
            StaticTemplate {
                subject: "{{game_name}} konnte nicht starten",
                text: "Das Spiel {{game_name}} ({{game_id}}) konnte nicht starten.\n\n\
                       Grund: {{reason}}\n\nEin Admin kann den Start wiederholen.\n",
                html: "<p>Das Spiel <strong>{{game_name}}</strong> ({{game_id}}) konnte \
                       nicht starten.</p>\n<p>Grund: {{reason}}</p>\n\
                       <p>Ein Admin kann den Start wiederholen.</p>",
            },
        ),
        (
            K::GamePausedAfterStart,
            StaticTemplate {
                subject: "{{game_name}} ist nach dem Start pausiert",
                text: "Die Engine von {{game_name}} ({{game_id}}) läuft, hat das Spiel \
                       aber nicht registriert; es ist pausiert.\n\nGrund: {{reason}}\n",
                html: "<p>Die Engine von <strong>{{game_name}}</strong> ({{game_id}}) \
                       läuft, hat das Spiel aber nicht registriert; es ist pausiert.</p>\n\
                       <p>Grund: {{reason}}</p>",
            },
        ),
        (
            K::TurnCompleted,
            StaticTemplate {
                subject: "{{game_name}}: Bericht zu Zug {{turn}}",
                text: "Hallo {{recipient_name}},\n\n\
                       Zug {{turn}} von {{game_name}} ist gelaufen. Befehle für Zug \
                       {{next_turn}} sind bis {{deadline}} fällig. Der Bericht deines \
                       Volkes {{race}}:\n\n\
                       {{report_text}}\n",
                html: "<p>Hallo {{recipient_name}},</p>\n\
                       <p>Zug {{turn}} von <strong>{{game_name}}</strong> ist gelaufen. \
                       Befehle für Zug {{next_turn}} sind bis <strong>{{deadline}}</strong> \
                       fällig. Der Bericht deines Volkes {{race}}:</p>\n\
                       <pre>{{report_text}}</pre>",
            },
        ),
        (
            K::GameFinished,
            StaticTemplate {
                subject: "{{game_name}} ist zu Ende",
                text: "Hallo {{recipient_name}},\n\n\
                       {{game_name}} endete nach Zug {{turn}}. Sieger: {{winner}}.\n\n\
                       Endstand:\n\n\
                       {{standings_table}}\n\
                       Der letzte Bericht deines Volkes {{race}}:\n\n\
                       {{report_text}}\n",
                html: "<p>Hallo {{recipient_name}},</p>\n\
                       <p><strong>{{game_name}}</strong> endete nach Zug {{turn}}. \
                       Sieger: <strong>{{winner}}</strong>.</p>\n\
                       <p>Endstand:</p>\n<pre>{{standings_table}}</pre>\n\
                       <p>Der letzte Bericht deines Volkes {{race}}:</p>\n\
                       <pre>{{report_text}}</pre>",
            },
        ),
        (
            K::RuntimeHealthAlert,
            StaticTemplate {
                subject: "Laufzeit-Alarm: {{kind}} in {{game}}",
                text: "Ereignis {{kind}} im Spiel {{game}} ({{game_id}}) um \
                       {{occurred}}.\n\n\
                       Details: {{detail}}\n",
                html: "<p>Ereignis <strong>{{kind}}</strong> im Spiel \
                       <strong>{{game}}</strong> ({{game_id}}) um {{occurred}}.</p>\n\
                       <p>Details: <code>{{detail}}</code></p>",
            },
        ),
        (
            K::TurnReminder,
            StaticTemplate {
                subject: "{{game_name}}: Befehle für Zug {{turn}} bis {{deadline}}",
                text: "Hallo {{recipient_name}},\n\n\
                       die Befehle deines Volkes {{race}} für Zug {{turn}} von \
                       {{game_name}} fehlen noch. Sie sind bis {{deadline}} fällig (in \
                       {{before}}).\n",
                html: "<p>Hallo {{recipient_name}},</p>\n\
                       <p>die Befehle deines Volkes {{race}} für Zug {{turn}} von \
                       <strong>{{game_name}}</strong> fehlen noch. Sie sind bis \
                       <strong>{{deadline}}</strong> fällig (in {{before}}).</p>",
            },
        ),
        (
            K::RaceIdle,
            StaticTemplate {
                subject: "{{game_name}}: Volk {{race}} ist untätig",
                text: "Hallo {{recipient_name}},\n\n\
                       das Volk {{race}} in {{game_name}} hat {{missed_turns}} Züge in Folge \
                       keine Befehle geschickt und ist nun untätig; die Engine spielt es \
                       ohne Befehle. Befehle seines Spielers machen es wieder aktiv; der \
                       Gastgeber kann seinen Platz einem Ersatzspieler anbieten.\n",
                html: "<p>Hallo {{recipient_name}},</p>\n\
                       <p>das Volk {{race}} in <strong>{{game_name}}</strong> hat \
                       {{missed_turns}} Züge in Folge keine Befehle geschickt und ist nun \
                       untätig; die Engine spielt es ohne Befehle. Befehle seines Spielers \
                       machen es wieder aktiv; der Gastgeber kann seinen Platz einem \
                       Ersatzspieler anbieten.</p>",
            },
        ),
        (
            K::SeatChanged,
            StaticTemplate {
                subject: "{{game_name}}: Volk {{race}} hat einen neuen Spieler",
                text: "Hallo {{recipient_name}},\n\n\
                       das Volk {{race}} in {{game_name}} wird ab Zug {{turn}} von einem \
                       Ersatzspieler gespielt.\n",
                html: "<p>Hallo {{recipient_name}},</p>\n\
                       <p>das Volk {{race}} in <strong>{{game_name}}</strong> wird ab Zug \
                       {{turn}} von einem Ersatzspieler gespielt.</p>",
            },
        ),
        (
            K::RaceMessage,
            StaticTemplate {
                subject: "{{game_name}}: Nachricht von {{from}}",
                text: "Hallo {{recipient_name}},\n\n\
                       {{from}} schreibt deinem Volk {{race}} in {{game_name}} (Zug \
                       {{turn}}):\n\n{{text}}\n",
                html: "<p>Hallo {{recipient_name}},</p>\n\
                       <p>{{from}} schreibt deinem Volk {{race}} in \
                       <strong>{{game_name}}</strong> (Zug {{turn}}):</p>\n\
                       <pre>{{text}}</pre>",
            },
        ),
        (
            K::OrdersAccepted,
            StaticTemplate {
                subject: "{{game_name}}: Befehle für Zug {{turn}} angenommen",
                text: "Hallo {{recipient_name}},\n\n\
                       deine Befehle für Zug {{turn}} von {{game_name}} wurden angenommen \
                       ({{order_count}} Zeilen gelesen). Sie ersetzen frühere Befehle für \
                       diesen Zug. Der Zug läuft um {{deadline}}.\n\n\
                       Um sie zu ändern, antworte auf diese Mail mit den vollständigen \
                       neuen Befehlen.\n",
                html: "<p>Hallo {{recipient_name}},</p>\n\
                       <p>deine Befehle für Zug {{turn}} von <strong>{{game_name}}</strong> \
                       wurden angenommen ({{order_count}} Zeilen gelesen). Sie ersetzen \
                       frühere Befehle für diesen Zug. Der Zug läuft um \
                       <strong>{{deadline}}</strong>.</p>\n\
                       <p>Um sie zu ändern, antworte auf diese Mail mit den vollständigen \
                       neuen Befehlen.</p>",
            },
        ),
        (
            K::OrdersRejected,
            StaticTemplate {
                subject: "{{game_name}}: Befehle für Zug {{turn}} NICHT angenommen",
                text: "Hallo {{recipient_name}},\n\n\
                       deine Befehle für Zug {{turn}} von {{game_name}} wurden nicht \
                       angenommen; früher gesendete Befehle bleiben gültig. Gründe:\n\n\
                       {{errors}}\n\
                       Die Befehle, wie sie gelesen wurden, mit den Zeilennummern der \
                       Gründe:\n\n\
                       {{orders_read}}\n\
                       Der Zug läuft um {{deadline}}. Antworte auf diese Mail mit \
                       korrigierten Befehlen.\n",
                html: "<p>Hallo {{recipient_name}},</p>\n\
                       <p>deine Befehle für Zug {{turn}} von <strong>{{game_name}}</strong> \
                       wurden <strong>nicht angenommen</strong>; früher gesendete Befehle \
                       bleiben gültig. Gründe:</p>\n<pre>{{errors}}</pre>\n\
                       <p>Die Befehle, wie sie gelesen wurden, mit den Zeilennummern der \
                       Gründe:</p>\n<pre>{{orders_read}}</pre>\n\
                       <p>Der Zug läuft um <strong>{{deadline}}</strong>. Antworte auf \
                       diese Mail mit korrigierten Befehlen.</p>",
            },
        ),
        (
            K::OrdersRefused,
            StaticTemplate {
                subject: "Deine Mail an Galaxy wurde nicht angenommen",
                text: "Hallo {{recipient_name}},\n\n\
                       Galaxy hat von {{sender}} eine Mail erhalten, die es nicht als \
                       Befehle annehmen kann. Befehle werden nur von der Adresse deines \
                       Galaxy-Kontos an deine Befehlsadresse des Spiels angenommen; die \
                       Mails des Spiels und \"Meine Spiele\" zeigen sie. Kam eine Mail \
                       von einer anderen Adresse an deine Befehlsadresse und war nicht \
                       von dir, dann kennt jemand diese Adresse: die Seite des Spiels \
                       gibt dir eine neue.\n\n\
                       Du bekommst höchstens einen solchen Hinweis pro Stunde.\n",
                html: "<p>Hallo {{recipient_name}},</p>\n\
                       <p>Galaxy hat von {{sender}} eine Mail erhalten, die es nicht als \
                       Befehle annehmen kann. Befehle werden nur von der Adresse deines \
                       Galaxy-Kontos an deine Befehlsadresse des Spiels angenommen; die \
                       Mails des Spiels und \"Meine Spiele\" zeigen sie. Kam eine Mail \
                       von einer anderen Adresse an deine Befehlsadresse und war nicht \
                       von dir, dann kennt jemand diese Adresse: die Seite des Spiels \
                       gibt dir eine neue.</p>\n\
                       <p>Du bekommst höchstens einen solchen Hinweis pro Stunde.</p>",
            },
        ),
        (
            K::OrdersNotTaken,
            StaticTemplate {
                subject: "{{game_name}}: deine Befehle wurden NICHT angenommen",
                text: "Hallo {{recipient_name}},\n\n\
                       die Befehle in deiner Mail für {{game_name}} wurden nicht \
                       angenommen: nichts ging an das Spiel, und früher gesendete Befehle \
                       bleiben, wie sie waren. Warum:\n\n\
                       {{reason}}\n\n\
                       Die Befehle, wie sie gelesen wurden:\n\n\
                       {{orders_read}}\n",
                html: "<p>Hallo {{recipient_name}},</p>\n\
                       <p>die Befehle in deiner Mail für <strong>{{game_name}}</strong> \
                       wurden <strong>nicht angenommen</strong>: nichts ging an das Spiel, \
                       und früher gesendete Befehle bleiben, wie sie waren. Warum:</p>\n\
                       <p>{{reason}}</p>\n\
                       <p>Die Befehle, wie sie gelesen wurden:</p>\n<pre>{{orders_read}}</pre>",
            },
        ),
    ],
};
