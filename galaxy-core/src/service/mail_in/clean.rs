//! Turning a mail body into orders text: what the player wrote, without the quoted
//! report they replied to, their signature, or what their mail client added.

/// Where the body came from: HTML turned to text loses the `>` of quotes, so everything
/// after a reply's attribution line is dropped there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// A text/plain part.
    Plain,
    /// An HTML part turned to text.
    Html,
}

/// Lines mail clients append on their own (trimmed, compared by prefix).
const CLIENT_NOISE: [&str; 10] = [
    "sent from my ",
    "get outlook for ",
    "sent from mail for windows",
    "sent from yahoo mail",
    "sent with proton mail",
    "sent from outlook",
    "von meinem ",
    "gesendet von ",
    "sent via ",
    "envoyé de mon ",
];

/// Lines after which everything is a forwarded or quoted original (trimmed).
const ORIGINAL_MARKERS: [&str; 5] = [
    "-----original message-----",
    "________________________________",
    "begin forwarded message:",
    "---------- forwarded message ---------",
    "-------- ursprüngliche nachricht --------",
];

/// The orders text of a body.
pub(crate) fn orders_text(body: &str, kind: BodyKind) -> String {
    let normalised: String = body
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .chars()
        .filter(|c| {
            !matches!(
                c,
                '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}' | '\u{ad}'
            )
        })
        .map(|c| if c == '\u{a0}' || c == '\t' { ' ' } else { c })
        .collect();
    let lines: Vec<&str> = normalised.split('\n').collect();
    let mut kept: Vec<&str> = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim();
        let lower = trimmed.to_lowercase();
        // The signature separator ends what the player wrote ("-- ", some clients "--").
        if line.trim_end() == "--" {
            break;
        }
        if ORIGINAL_MARKERS.iter().any(|m| lower == *m) || outlook_header_block(&lines[i..]) {
            break;
        }
        if let Some(length) = attribution(&lines[i..]) {
            if kind == BodyKind::Html {
                break;
            }
            i += length;
            continue;
        }
        if trimmed.starts_with('>') || CLIENT_NOISE.iter().any(|n| lower.starts_with(n)) {
            i += 1;
            continue;
        }
        kept.push(line.trim_end());
        i += 1;
    }
    while kept.last().is_some_and(|l| l.is_empty()) {
        kept.pop();
    }
    let start = kept
        .iter()
        .position(|l| !l.is_empty())
        .unwrap_or(kept.len());
    kept[start..].join("\n")
}

/// A `format=flowed` body (RFC 3676) as the lines its writer typed: a line ending in a
/// space was wrapped by the mail client and goes on in the next line of the same quote
/// depth, so one long order comes back whole rather than as two that each fail; a space
/// the client stuffed before a line starting with a space, `>` or `From ` goes. With
/// `DelSp=yes` the wrapping space itself was added and is removed too. The signature
/// separator `-- ` is never a wrap. Quoted lines keep their `>` markers (one per depth,
/// then a space), so [`orders_text`] still drops them.
pub(crate) fn unflow(body: &str, delete_space: bool) -> String {
    let mut lines: Vec<String> = Vec::new();
    // The quote depth of a paragraph still being joined, if one is.
    let mut open: Option<usize> = None;
    for raw in body.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let depth = raw.bytes().take_while(|b| *b == b'>').count();
        let text = &raw[depth..];
        let text = text.strip_prefix(' ').unwrap_or(text);
        let wrapped = text.ends_with(' ') && text != "-- ";
        let text = match wrapped && delete_space {
            true => &text[..text.len() - 1],
            false => text,
        };
        // The signature separator never goes on a wrapped line: it stays a line of its
        // own, so what follows it is still the signature.
        let separator = depth == 0 && text == "-- ";
        match (open, lines.last_mut()) {
            (Some(d), Some(last)) if d == depth && !separator => last.push_str(text),
            _ => {
                let marker = match depth {
                    0 => String::new(),
                    d => format!("{} ", ">".repeat(d)),
                };
                lines.push(marker + text);
            }
        }
        open = wrapped.then_some(depth);
    }
    lines.join("\n")
}

/// An HTML body as text lines: block elements and `<br>` end lines (blank lines are
/// not kept, orders need none), quoted
/// `<blockquote>` content is dropped, other tags go, the common entities and every
/// numeric one are decoded. Line breaks and runs of spaces in the HTML source are one
/// space, as a browser shows them (clients wrap their HTML source at about 76 columns,
/// inside an order), except within `<pre>`.
/// Bounded work: one pass over the input. (The end tag of a `<style>`, `<script>` or
/// `<head>` is looked for in one lower-cased copy of the whole input, made once: a copy
/// of the rest per such tag made a message of 20 000 `<style></style>` copy gigabytes.)
pub(crate) fn html_text(html: &str) -> String {
    // ASCII lower-casing keeps every byte where it was, so an offset into `lower` is the
    // same offset into `html`.
    let lower = html.to_ascii_lowercase();
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    let mut quote_depth = 0usize;
    let mut pre_depth = 0usize;
    while let Some(open) = rest.find('<') {
        if quote_depth == 0 {
            push_text(&mut out, &rest[..open], pre_depth > 0);
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            rest = "";
            break;
        };
        let tag = after[..close].trim().to_ascii_lowercase();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let closing = tag.starts_with('/');
        match name.as_str() {
            "blockquote" if closing => quote_depth = quote_depth.saturating_sub(1),
            "blockquote" => quote_depth += 1,
            "pre" => {
                pre_depth = if closing {
                    pre_depth.saturating_sub(1)
                } else {
                    pre_depth + 1
                };
                if quote_depth == 0 && !out.ends_with('\n') {
                    out.push('\n');
                }
            }
            // One line break per block boundary: `</div><div>` is one line end.
            "br" | "div" | "p" | "li" | "tr" | "h1" | "h2" | "h3" | "table"
                if quote_depth == 0 && !out.ends_with('\n') =>
            {
                out.push('\n');
            }
            "style" | "script" | "head" if !closing => {
                // Skip to the matching end tag.
                let end = format!("</{name}");
                let skipped = &after[close + 1..];
                // `skipped` is a suffix of `html`: its offset there is what precedes it.
                let from = html.len() - skipped.len();
                match lower.get(from..).and_then(|tail| tail.find(&end)) {
                    Some(at) => {
                        rest = &skipped[at..];
                        continue;
                    }
                    None => {
                        rest = "";
                        break;
                    }
                }
            }
            _ => {}
        }
        rest = &after[close + 1..];
    }
    if quote_depth == 0 {
        push_text(&mut out, rest, pre_depth > 0);
    }
    decode_entities(&out)
}

/// Appends HTML source text: as it is within `<pre>`, else each run of whitespace (line
/// breaks included) as one space.
fn push_text(out: &mut String, text: &str, pre: bool) {
    if pre {
        out.push_str(text);
        return;
    }
    for (i, word) in text.split(|c: char| c.is_ascii_whitespace()).enumerate() {
        if i > 0 && !out.ends_with([' ', '\n']) {
            out.push(' ');
        }
        out.push_str(word);
    }
}

/// The named entities mail clients write in orders text, and every numeric one
/// (`&#160;`, `&#x27;`), in one pass (each entity is looked for in the few bytes after
/// its `&`, never further): a no-break space or a whitespace character is a space, as a
/// browser shows it; zero-width characters go; NUL is U+FFFD; an entity that names no
/// character is kept as written.
fn decode_entities(text: &str) -> String {
    /// `&#1114111;` is the longest numeric entity; named ones are shorter.
    const LONGEST: usize = 10;
    const NAMED: [(&str, char); 5] = [
        ("nbsp", ' '),
        ("lt", '<'),
        ("gt", '>'),
        ("quot", '"'),
        ("amp", '&'),
    ];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let name = after
            .bytes()
            .take(LONGEST)
            .position(|b| b == b';')
            .map(|end| &after[..end]);
        let decoded = name.and_then(|name| {
            let c = match name.strip_prefix('#') {
                Some(number) => {
                    let code = match number.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => number.parse().ok(),
                    };
                    match code.and_then(char::from_u32)? {
                        '\0' => Some('\u{fffd}'),
                        '\u{a0}' => Some(' '),
                        c if c.is_whitespace() => Some(' '),
                        '\u{200b}'..='\u{200d}' | '\u{feff}' => None,
                        c => Some(c),
                    }
                }
                None => Some(NAMED.iter().find(|(n, _)| *n == name)?.1),
            };
            Some((c, name.len()))
        });
        match decoded {
            Some((c, length)) => {
                out.extend(c);
                rest = &after[length + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// How many lines a reply's attribution takes at the start of `lines` ("On <date>,
/// <who> wrote:", "Am <date> schrieb <who>:", possibly wrapped onto a second line), if
/// it starts there.
fn attribution(lines: &[&str]) -> Option<usize> {
    let first = lines.first()?.trim();
    let opens = |l: &str| {
        let l = l.to_lowercase();
        l.starts_with("on ") || l.starts_with("am ") || l.starts_with("le ")
    };
    let closes = |l: &str| {
        let l = l.trim().to_lowercase();
        l.ends_with("wrote:")
            || l.ends_with("schrieb:")
            || l.ends_with("a écrit :")
            || (l.starts_with("am ") && l.contains(" schrieb ") && l.ends_with(':'))
    };
    if !opens(first) {
        return None;
    }
    if closes(first) {
        return Some(1);
    }
    // Gmail and Apple Mail wrap a long attribution once, Gmail inside the address
    // ("... schrieb Galaxy <" / "orders+...@galaxy.example>:"): the two lines together
    // make the attribution.
    let next = lines.get(1)?.trim();
    closes(&format!("{first} {next}")).then_some(2)
}

/// Whether `lines` start a quoted header block: Outlook's (`From: ...` then `Sent:` or
/// `Date:` within the next lines), or GMX's and web.de's (`Gesendet: ...` then `Von:`).
fn outlook_header_block(lines: &[&str]) -> bool {
    let Some(first) = lines.first() else {
        return false;
    };
    let first = first.trim().to_lowercase();
    let follows = |starts: &[&str]| {
        lines.iter().skip(1).take(3).any(|l| {
            let l = l.trim().to_lowercase();
            starts.iter().any(|s| l.starts_with(s))
        })
    };
    if first.starts_with("from: ") || first.starts_with("von: ") {
        follows(&["sent: ", "date: ", "gesendet: "])
    } else if first.starts_with("gesendet: ") || first.starts_with("sent: ") {
        follows(&["von: ", "from: "])
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flowed_lines_are_joined_as_typed() {
        // A wrapped order, a wrapped quote, a space-stuffed line, the signature separator.
        let body = "design Raider attack=6 \r\ndefence=2 speed=9 cargo=0\r\n\
                    > Your planets: \r\n> 4\r\n  indented\r\n From here\r\n-- \r\nAnn\r\n";
        assert_eq!(
            unflow(body, false),
            "design Raider attack=6 defence=2 speed=9 cargo=0\n> Your planets: 4\n \
             indented\nFrom here\n-- \nAnn\n"
        );
        // DelSp=yes: the wrap's space was the client's, a word was split in two.
        assert_eq!(
            unflow("build_indus \r\ntry 4\r\n", true),
            "build_industry 4\n"
        );
        // A wrap does not cross a quote depth: the quote ends, the orders start.
        assert_eq!(
            unflow("> turn 3 \r\nmove 1 2", false),
            "> turn 3 \nmove 1 2"
        );
        // Nor swallows the signature separator after a wrapped last line.
        let signed = "move 1 2 \r\n-- \r\nAnn, move 9 9\r\n";
        assert_eq!(unflow(signed, false), "move 1 2 \n-- \nAnn, move 9 9\n");
        assert_eq!(
            orders_text(&unflow(signed, false), BodyKind::Plain),
            "move 1 2"
        );
        // What the player wrote comes out whole once cleaned.
        assert_eq!(
            orders_text(&unflow(body, false), BodyKind::Plain),
            "design Raider attack=6 defence=2 speed=9 cargo=0\n indented\nFrom here"
        );
    }

    #[test]
    fn quotes_signatures_and_noise_go() {
        let body = "\u{feff}build_industry 4\r\nmove 3 7  \r\n\r\nSent from my iPhone\r\n\r\n\
                    On Thu, 3 Dec 2026 at 10:00, Galaxy <\r\norders+abc@galaxy.example> wrote:\r\n\
                    > turn 3 report\r\n> planets\r\n";
        assert_eq!(
            orders_text(body, BodyKind::Plain),
            "build_industry 4\nmove 3 7"
        );
        let signed = "move 1 2\n-- \nAnn\nmove 9 9\n";
        assert_eq!(orders_text(signed, BodyKind::Plain), "move 1 2");
    }

    #[test]
    fn interleaved_replies_keep_the_orders_between_quotes() {
        let body = "On 12/3/26 10:00, Galaxy wrote:\n> Your fleets:\n> 3 at planet 1\n\
                    move 3 7\n> Your planets:\nbuild_industry 4\n";
        assert_eq!(
            orders_text(body, BodyKind::Plain),
            "move 3 7\nbuild_industry 4"
        );
    }

    #[test]
    fn outlook_and_forwarded_originals_are_cut() {
        let body =
            "move 1 2\n\nFrom: Galaxy <x@galaxy.example>\nSent: Thursday\nSubject: turn\n\nreport";
        assert_eq!(orders_text(body, BodyKind::Plain), "move 1 2");
        let body = "move 1 2\n-----Original Message-----\nreport";
        assert_eq!(orders_text(body, BodyKind::Plain), "move 1 2");
        // GMX and web.de: the date first.
        let body = "move 1 2\n\nGesendet: Donnerstag, 03. Dezember 2026 um 09:00 Uhr\n\
                    Von: \"Galaxy\" <x@galaxy.example>\nAn: ann@gmx.de\nBetreff: turn\n\nreport";
        assert_eq!(orders_text(body, BodyKind::Plain), "move 1 2");
    }

    #[test]
    fn a_german_attribution_wrapped_inside_the_address_goes() {
        // Gmail in German wraps before the address, so the second line ends in ">:".
        let body = "move 1 2\r\n\r\nAm Do., 3. Dez. 2026 um 09:00 Uhr schrieb Galaxy <\r\n\
                    orders+abc@galaxy.example>:\r\n\r\n> turn 3 report\r\n";
        assert_eq!(orders_text(body, BodyKind::Plain), "move 1 2");
        // French the same way.
        let body =
            "move 1 2\nLe jeu. 3 déc. 2026 à 09:00, Galaxy <\nx@galaxy.example> a écrit :\n> r\n";
        assert_eq!(orders_text(body, BodyKind::Plain), "move 1 2");
        // Orders that merely begin with "am" stay.
        let body = "am 1 2\nmove 3 4:\n";
        assert_eq!(orders_text(body, BodyKind::Plain), "am 1 2\nmove 3 4:");
    }

    #[test]
    fn html_text_ends_at_the_attribution() {
        let body =
            "move 1 2\nAm Do., 3. Dez. 2026 um 10:00 Uhr schrieb Galaxy <x@y>:\nreport text\n";
        assert_eq!(orders_text(body, BodyKind::Html), "move 1 2");
    }

    #[test]
    fn html_becomes_lines_without_quotes() {
        let html = "<html><head><style>p{}</style></head><body><div>build_industry 4</div>\
                    <div>move 3&nbsp;7<br></div><blockquote type=cite><div>report</div>\
                    <blockquote>older</blockquote>more report</blockquote><p>A &amp; B</p>";
        let text = html_text(html);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines, vec!["build_industry 4", "move 3 7", "A & B"]);
        assert_eq!(html_text("<div>unclosed <b"), "\nunclosed ");
        assert_eq!(html_text("<div>a</div><div>b</div>"), "\na\nb\n");
    }

    #[test]
    fn html_source_wraps_are_spaces_and_numeric_entities_decode() {
        // A client wrapped its HTML source inside an order.
        let html = "<div>design Raider attack=6\r\n    defence=2 speed=9 cargo=0</div>\
                    <div>move&#160;1&#xA0;2&#8203;</div><div>say &#60;hi&#62; &amp;#60;</div>";
        assert_eq!(
            orders_text(&html_text(html), BodyKind::Html),
            "design Raider attack=6 defence=2 speed=9 cargo=0\nmove 1 2\nsay <hi> &#60;"
        );
        // Within <pre> the lines are the author's; a number that is no character stays.
        assert_eq!(
            html_text("<pre>a\n  b</pre>c &#1114112; &#;"),
            "\na\n  b\nc &#1114112; &#;"
        );
        // Each entity is decoded once; whitespace ones are spaces; NUL is shown as U+FFFD.
        assert_eq!(
            decode_entities("&#38;amp; a&#10;b&#9;c &#0; &unknown; & &amp"),
            "&amp; a b c \u{fffd} &unknown; & &amp"
        );
    }

    #[test]
    fn entities_are_looked_for_in_bounded_reach() {
        // Hostile input: `&#` over and over with no `;`, then one at the end. Each `&`
        // looks a few bytes ahead, so this is linear work (a search to the end for each
        // would be quadratic); the text comes out unchanged.
        let hostile = format!("{};", "&#".repeat(200_000));
        assert_eq!(decode_entities(&hostile), hostile);
    }

    #[test]
    fn skipped_elements_end_at_their_end_tag_in_any_case() {
        assert_eq!(
            html_text("<STYLE>p{}</Style><p>move 1 2</p><Script>x()</SCRIPT>build 3"),
            "\nmove 1 2\nbuild 3"
        );
        // A non-ASCII character before and inside a skipped element keeps the offsets
        // of the lower-cased copy and of the input the same.
        assert_eq!(html_text("Ünïcode <head>Ä</HEAD>after"), "Ünïcode after");
        // An element never closed takes the rest with it.
        assert_eq!(html_text("kept <script>never closed <p>move"), "kept ");
        // The message that made each skipped element copy the rest of the input: many
        // of them, each found by one search from where the last ended.
        let many = "<style></style>".repeat(20_000) + "<p>move 1 2</p>";
        assert_eq!(html_text(&many), "\nmove 1 2\n");
    }

    #[test]
    fn nothing_left_is_empty() {
        assert_eq!(orders_text("> only a quote\n\n", BodyKind::Plain), "");
        assert_eq!(orders_text("", BodyKind::Html), "");
    }
}
