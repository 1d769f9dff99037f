//! `manifest.csv`: one row per image with columns
//! `stem,class,width,height,lesion_pixels,mask_files` (RFC 4180 quoting, one record per line).

use std::path::Path;

use crate::error::{DataError, Result};

/// Header line of `manifest.csv`.
pub const MANIFEST_HEADER: [&str; 6] = [
    "stem",
    "class",
    "width",
    "height",
    "lesion_pixels",
    "mask_files",
];

/// One manifest row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRow {
    pub stem: String,
    /// e.g. `benign`, `malignant`, `normal`.
    pub class: String,
    pub width: u32,
    pub height: u32,
    /// Lesion (non-zero) pixels of the merged mask.
    pub lesion_pixels: u64,
    /// Number of source mask files merged by OR (0 when a normal image had none).
    pub mask_files: u32,
}

/// Quote a field when it holds a comma, quote or line break.
fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

/// Split one CSV record into fields (quoted fields may hold commas and doubled quotes).
fn split_record(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cur.push('"');
                }
                '"' => {
                    quoted = false;
                    if !matches!(chars.peek(), None | Some(',')) {
                        return Err("text after closing quote".into());
                    }
                }
                _ => cur.push(c),
            }
        } else {
            match c {
                ',' => {
                    fields.push(std::mem::take(&mut cur));
                    at_start = true;
                    continue;
                }
                '"' if at_start => quoted = true,
                _ => cur.push(c),
            }
        }
        at_start = false;
    }
    if quoted {
        return Err("unclosed quote".into());
    }
    fields.push(cur);
    Ok(fields)
}

/// The manifest text for `rows` (header first).
pub fn manifest_text(rows: &[ManifestRow]) -> String {
    let mut s = MANIFEST_HEADER.join(",");
    s.push('\n');
    for r in rows {
        s.push_str(&format!(
            "{},{},{},{},{},{}\n",
            quote(&r.stem),
            quote(&r.class),
            r.width,
            r.height,
            r.lesion_pixels,
            r.mask_files
        ));
    }
    s
}

/// Write `rows` to `path` (overwrites: callers check for existing output first).
pub fn write_manifest(path: &Path, rows: &[ManifestRow]) -> Result<()> {
    crate::safe_fs::write_atomic(path, manifest_text(rows).as_bytes())
}

/// Read `path`; the header must hold the six columns (in any order, extra columns ignored).
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestRow>> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, "cannot read", e))?;
    parse_manifest(path, &text)
}

fn parse_manifest(path: &Path, text: &str) -> Result<Vec<ManifestRow>> {
    let bad = |line: usize, reason: String| DataError::BadManifest {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((hline, header)) = lines.next() else {
        return Err(bad(1, "empty file".into()));
    };
    let header = split_record(header).map_err(|r| bad(hline, r))?;
    let mut col = [0usize; 6];
    for (i, name) in MANIFEST_HEADER.iter().enumerate() {
        col[i] = header
            .iter()
            .position(|h| h.trim() == *name)
            .ok_or_else(|| bad(hline, format!("header has no `{name}` column")))?;
    }
    let mut rows = Vec::new();
    for (n, line) in lines {
        let f = split_record(line).map_err(|r| bad(n, r))?;
        if f.len() < header.len() {
            return Err(bad(
                n,
                format!("{} fields, header has {}", f.len(), header.len()),
            ));
        }
        let num = |i: usize| -> Result<u64> {
            let name = MANIFEST_HEADER[i];
            f[col[i]]
                .trim()
                .parse::<u64>()
                .map_err(|_| bad(n, format!("{name} `{}` is not a whole number", f[col[i]])))
        };
        let small = |i: usize| -> Result<u32> {
            u32::try_from(num(i)?).map_err(|_| bad(n, format!("{} too large", MANIFEST_HEADER[i])))
        };
        rows.push(ManifestRow {
            stem: f[col[0]].clone(),
            class: f[col[1]].trim().to_owned(),
            width: small(2)?,
            height: small(3)?,
            lesion_pixels: num(4)?,
            mask_files: small(5)?,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_awkward_stems() {
        let rows = vec![
            ManifestRow {
                stem: "benign (10)".into(),
                class: "benign".into(),
                width: 500,
                height: 400,
                lesion_pixels: 1234,
                mask_files: 2,
            },
            ManifestRow {
                stem: "odd, \"name\"".into(),
                class: "normal".into(),
                width: 1,
                height: 2,
                lesion_pixels: 0,
                mask_files: 0,
            },
        ];
        let text = manifest_text(&rows);
        assert!(text.starts_with("stem,class,width,height,lesion_pixels,mask_files\n"));
        assert_eq!(parse_manifest(Path::new("m.csv"), &text).unwrap(), rows);
    }

    #[test]
    fn bad_number_names_line() {
        let text = "stem,class,width,height,lesion_pixels,mask_files\na,benign,x,2,3,1\n";
        let err = parse_manifest(Path::new("m.csv"), text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "m.csv:2: bad manifest: width `x` is not a whole number"
        );
    }

    #[test]
    fn missing_column_is_error() {
        let err = parse_manifest(Path::new("m.csv"), "stem,class\n").unwrap_err();
        assert!(err.to_string().contains("no `width` column"), "{err}");
    }
}
