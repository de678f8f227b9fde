//! A manifest's bytes made text. Spreadsheets save "CSV" in the encoding of the machine
//! (Windows-1252 in western Europe and the Americas), "Unicode text" as UTF-16, and "CSV UTF-8"
//! with a byte-order mark: all are read. Text that is none of them is refused at its first bad
//! byte, with the way to save it right.
//!
//! Lines survive decoding one for one (each encoding writes a line break as one character), so a
//! position in the decoded text names the same line, and the same column in characters, as in
//! the file.

use encoding_rs::{UTF_16BE, UTF_16LE, WINDOWS_1252};

use super::{Pos, Unreadable, pos_in};

pub(super) struct Decoded {
    pub text: String,
    /// Where the first character beyond ASCII lies, when the text was not UTF-8 and was read as
    /// Windows-1252: a guess, which the user is shown to check.
    pub windows_1252_at: Option<usize>,
}

const SAVE_AS_UTF8: &str = "save it as UTF-8: in Excel, Save As → \"CSV UTF-8 (Comma delimited)\"; in LibreOffice, \
                            character set \"Unicode (UTF-8)\"";

pub(super) fn decode(bytes: Vec<u8>) -> Result<Decoded, Unreadable> {
    let utf16 = if bytes.starts_with(&[0xFF, 0xFE]) {
        Some(UTF_16LE)
    } else if bytes.starts_with(&[0xFE, 0xFF]) {
        Some(UTF_16BE)
    } else {
        None
    };
    if let Some(encoding) = utf16 {
        let (text, damaged) = encoding.decode_without_bom_handling(&bytes[2..]);
        if damaged {
            // Shown up to the damage, which decoding marked `�`.
            let text = text.into_owned();
            let bad = text.find('\u{fffd}').unwrap_or(0);
            let end = text[bad..].find('\n').map_or(text.len(), |i| bad + i);
            return Err(Unreadable {
                at: Some(pos_in(&text[..end], bad, '\u{fffd}'.len_utf8())),
                readable: Some(text[..end].to_string()),
                ..Unreadable::new(
                    format!("this {} text is damaged (half a character)", encoding.name()),
                    Some(SAVE_AS_UTF8),
                )
            });
        }
        return Ok(Decoded {
            text: text.into_owned(),
            windows_1252_at: None,
        });
    }
    let bytes = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => rest.to_vec(),
        None => bytes,
    };
    let error = match String::from_utf8(bytes) {
        // NUL is UTF-8, but no text holds it: UTF-16 saved without its mark, most likely.
        Ok(text) => match text.find('\0') {
            Some(nul) => return Err(refusal(text.as_bytes(), nul)),
            None => {
                return Ok(Decoded {
                    text,
                    windows_1252_at: None,
                });
            }
        },
        Err(e) => e,
    };
    let bytes = error.as_bytes();
    // UTF-8 characters beside bytes that are not: one encoding pasted into the other. Read as
    // 1252 the UTF-8 would turn to `Ã©`, so neither reading is right.
    // Only the characters a person types in Western text count as evidence of UTF-8 (Latin-1
    // letters, typographic punctuation, €): Windows-1252 text such as `ß…` (DF 85) also happens
    // to form a valid, but unlikely, UTF-8 sequence.
    let typed = |c: char| matches!(c as u32, 0x80..=0xFF | 0x2000..=0x206F | 0x20AC);
    if bytes.utf8_chunks().any(|chunk| chunk.valid().chars().any(typed)) {
        // Shown as UTF-8 up to the end of the bad byte's line, bad bytes as `�`; all before it
        // is UTF-8, so its offset is the same in the text shown.
        let bad = error.utf8_error().valid_up_to();
        let end = bytes[bad..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| bad + i);
        let shown = String::from_utf8_lossy(&bytes[..end]).into_owned();
        return Err(Unreadable {
            at: Some(pos_in(&shown, bad, '\u{fffd}'.len_utf8())),
            readable: Some(shown),
            ..Unreadable::new(
                format!(
                    "byte 0x{:02X} is not UTF-8, but the text around it is: the file mixes two encodings",
                    bytes[bad]
                ),
                Some(&format!("retype the characters shown as `�`, then {SAVE_AS_UTF8}")),
            )
        });
    }
    match implausible_1252(bytes) {
        None => {
            let (text, _) = WINDOWS_1252.decode_without_bom_handling(bytes);
            let text = text.into_owned();
            let first = text.find(|c: char| !c.is_ascii()).unwrap_or(0);
            Ok(Decoded {
                text,
                windows_1252_at: Some(first),
            })
        }
        Some(bad) => Err(refusal(bytes, bad)),
    }
}

/// The first byte that makes Windows-1252 an unlikely reading: a control character no text file
/// holds (`NUL` is typical of UTF-16 saved without its mark), one of the five bytes 1252 leaves
/// undefined, or, when more than a quarter of the bytes lie beyond ASCII (no western text does),
/// the first byte that is not UTF-8.
fn implausible_1252(bytes: &[u8]) -> Option<usize> {
    let control = bytes.iter().position(|&b| not_text(b));
    if control.is_some() {
        return control;
    }
    let high = bytes.iter().filter(|&&b| b >= 0x80).count();
    if high * 4 > bytes.len() {
        return Some(std::str::from_utf8(bytes).err().map_or(0, |e| e.valid_up_to()));
    }
    None
}

/// A byte no text in Windows-1252 holds: a control character other than tab and line breaks, or
/// one of the five bytes 1252 leaves undefined.
fn not_text(b: u8) -> bool {
    matches!(b, 0x00..=0x08 | 0x0B | 0x0C | 0x0E..=0x1F | 0x7F | 0x81 | 0x8D | 0x8F | 0x90 | 0x9D)
}

/// "byte 0x00 is not text", placed on its line, which is shown with the byte as `�`.
fn refusal(bytes: &[u8], bad: usize) -> Unreadable {
    let start = bytes[..bad].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let end = bytes[bad..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| bad + i);
    // The lines before as they read; the bad line with every byte that is not text as `�`.
    let shown_char = |b: u8| -> String {
        if not_text(b) {
            "\u{fffd}".into()
        } else {
            WINDOWS_1252.decode_without_bom_handling(&[b]).0.into_owned()
        }
    };
    let mut shown = String::from_utf8_lossy(&bytes[..start]).into_owned();
    for &b in &bytes[start..bad] {
        shown.push_str(&shown_char(b));
    }
    let offset = shown.len();
    shown.push('\u{fffd}');
    for &b in &bytes[bad + 1..end] {
        shown.push_str(&shown_char(b));
    }
    let at: Pos = pos_in(&shown, offset, '\u{fffd}'.len_utf8());
    Unreadable {
        at: Some(at),
        readable: Some(shown),
        ..Unreadable::new(
            format!("byte 0x{:02X} is not text in UTF-8, UTF-16 or Windows-1252", bytes[bad]),
            Some(SAVE_AS_UTF8),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every encoding a spreadsheet or an editor saves a manifest in, and what it reads as.
    #[test]
    fn each_encoding_reads_as_the_same_text() {
        let text = "model;prompt\nmagic/text-to-video;Café -20% “été”\n";
        let utf16le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let utf16be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        let (cp1252, _, unmappable) = WINDOWS_1252.encode(text);
        assert!(!unmappable);
        let cases: Vec<(&str, Vec<u8>, bool)> = vec![
            ("UTF-8", text.as_bytes().to_vec(), false),
            ("UTF-8 with a mark", [b"\xEF\xBB\xBF", text.as_bytes()].concat(), false),
            ("UTF-16 LE", utf16le, false),
            ("UTF-16 BE", utf16be, false),
            ("Windows-1252", cp1252.into_owned(), true),
        ];
        for (name, bytes, guessed) in cases {
            let decoded = decode(bytes).unwrap_or_else(|u| panic!("{name}: {}", u.message));
            assert_eq!(decoded.text, text, "{name}");
            assert_eq!(decoded.windows_1252_at, guessed.then_some(36), "{name}");
        }
    }

    /// German Windows-1252 text whose bytes happen to form UTF-8 sequences (`ß…` is DF 85, `ß“`
    /// is DF 93): read as Windows-1252, not refused as mixed.
    #[test]
    fn windows_1252_that_looks_like_utf8_in_places_is_still_windows_1252() {
        let text = "model;prompt\nmagic/text-to-video;Spaß… „Fuß“ für 5€\n";
        let (cp1252, _, unmappable) = WINDOWS_1252.encode(text);
        assert!(!unmappable);
        let decoded = decode(cp1252.into_owned()).unwrap_or_else(|u| panic!("{}", u.message));
        assert_eq!(decoded.text, text);
        assert!(decoded.windows_1252_at.is_some());
    }

    /// Bytes that no encoding read makes text: the place of the first, and the way out.
    #[test]
    fn bytes_that_are_no_text_are_refused_at_their_place() {
        let cases: &[(&[u8], &str, (usize, usize))] = &[
            // UTF-16 saved without its mark: NUL after every ASCII letter.
            (b"m\x00o\x00d\x00e\x00l\x00", "byte 0x00", (1, 2)),
            (b"model,prompt\nmagic/text-to-video,Caf\xE9\x81\n", "byte 0x81", (2, 25)),
            (
                b"model,prompt\nx,\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\n",
                "byte 0xE9",
                (2, 3),
            ),
            (b"\xFF\xFEm\x00\x00\xD8", "UTF-16LE text is damaged", (1, 2)),
            // UTF-8 `é` on line 1, a Windows-1252 `é` on line 2.
            (
                b"model,prompt # caf\xC3\xA9\nx,Caf\xE9\n",
                "the file mixes two encodings",
                (2, 6),
            ),
        ];
        for &(bytes, message, (line, column)) in cases {
            let Err(refused) = decode(bytes.to_vec()) else {
                panic!("{message}: read as text");
            };
            assert!(refused.message.contains(message), "{}", refused.message);
            assert_eq!(
                refused.at.map(|p| (p.line, p.column)),
                Some((line, column)),
                "{message}"
            );
            assert!(refused.help.unwrap().contains("CSV UTF-8"));
        }
    }
}
