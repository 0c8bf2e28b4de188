//! File helpers: atomic writes, so that an interrupted command never leaves a half-written file,
//! and text reading that names the line of a bad byte.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Writes `contents` to `path` atomically: the bytes go to a temporary file in the same directory,
/// which is flushed to disk and renamed over `path` only once complete.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads a text file: a leading byte-order mark is dropped, and bytes that are not UTF-8 are an
/// [`io::ErrorKind::InvalidData`] error naming their line and column.
pub fn read_text(path: &Path) -> io::Result<String> {
    decode_text(fs::read(path)?)
}

/// Decodes bytes as [`read_text`] does.
pub fn decode_text(mut bytes: Vec<u8>) -> io::Result<String> {
    if bytes.starts_with(BYTE_ORDER_MARK) {
        bytes.drain(..BYTE_ORDER_MARK.len());
    }
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
        let line_start = bytes[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "line {line} is not valid UTF-8 (byte {} of the line)",
                at - line_start + 1
            ),
        )
    })
}

/// The UTF-8 encoding of U+FEFF, which some editors put at the start of text files.
pub const BYTE_ORDER_MARK: &[u8] = "\u{feff}".as_bytes();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("karel-fsutil-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.txt");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        assert!(write_atomic(&dir.join("missing/out.txt"), b"x").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn text_loses_its_byte_order_mark_and_bad_bytes_are_located() {
        assert_eq!(decode_text(b"\xef\xbb\xbfDEF".to_vec()).unwrap(), "DEF");
        assert_eq!(decode_text(b"a\xef\xbb\xbf".to_vec()).unwrap(), "a\u{feff}");
        let error = decode_text(b"one\ntwo\nth\xffree\n".to_vec()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            error.to_string(),
            "line 3 is not valid UTF-8 (byte 3 of the line)"
        );
    }
}
