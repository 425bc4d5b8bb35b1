//! Rules for free text that other people see next to trusted text (game names, display
//! names): what may never appear in them.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Whether `c` may not appear in a name shown to other users: control characters, format
/// characters (bidi overrides such as U+202E, zero-width joiners, which let a name spoof
/// the text around it in the lobby and in mail), line and paragraph separators, private
/// use, surrogates and unassigned code points.
pub fn forbidden_in_names(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::PrivateUse
            | GeneralCategory::Surrogate
            | GeneralCategory::Unassigned
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spoofing_and_invisible_characters_are_forbidden() {
        for c in [
            '\u{7}', '\n', '\u{202E}', '\u{202A}', '\u{2066}', '\u{200B}', '\u{200D}', '\u{FEFF}',
            '\u{2028}', '\u{2029}', '\u{E000}', '\u{AD}',
        ] {
            assert!(forbidden_in_names(c), "{:?}", c);
        }
        for c in ['a', 'Z', ' ', '-', 'é', 'Ж', '星', '\'', '!', '😀'] {
            assert!(!forbidden_in_names(c), "{:?}", c);
        }
    }
}
