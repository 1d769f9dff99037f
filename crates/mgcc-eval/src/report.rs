//! Evaluation report writers: the per-case CSV and `summary.json`, both written atomically
//! (to `<path>.tmp`, flushed, then renamed over `<path>`).
//!
//! CSV: header `case,iou,dice,precision,recall,specificity,accuracy,f1,hd95,iou_compat,dice_compat`,
//! one row per case, `\n` line ends. Quoting follows RFC 4180: a case name containing a comma,
//! a double quote, a space, CR or LF is wrapped in double quotes and inner quotes are doubled.
//! Numbers are written in Rust's shortest round-trip decimal form.
//!
//! `summary.json`:
//! ```json
//! { "n_cases": 36, "threshold": 0.5, "threshold_rule": "p > 0.5",
//!   "std": "sample standard deviation (ddof = 1); 0 when n_cases = 1",
//!   "metrics": { "iou": {"mean": …, "std": …}, "dice": …, "precision": …, "recall": …,
//!                "specificity": …, "accuracy": …, "f1": …, "hd95": … },
//!   "compat":  { "iou": {"mean": …, "std": …}, "dice": {"mean": …, "std": …} },
//!   "meta": { …whatever the caller passes… } }
//! ```
//! `metrics` holds the documented definitions, `compat` the published-code IoU/Dice
//! (see [`crate::metrics`]).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use thiserror::Error;

use crate::metrics::{MetricSummary, SegMetrics, THRESHOLD};

/// Errors from writing or reading reports; each names the file.
#[derive(Debug, Error)]
pub enum ReportError {
    /// Creating, writing or renaming a file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Serialising JSON failed.
    #[error("cannot serialise JSON for {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The serde error.
        source: serde_json::Error,
    },
    /// A per-case CSV is malformed.
    #[error("{path}: {source}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// What is wrong and where.
        source: CsvError,
    },
}

/// A malformed per-case CSV (line numbers are 1-based records, the header is record 1).
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CsvError {
    /// The header is not the expected one.
    #[error("unexpected header {found:?}, expected {expected:?}")]
    Header {
        /// Header found.
        found: String,
        /// Header expected.
        expected: String,
    },
    /// A record has the wrong number of fields.
    #[error("record {record}: {got} fields, expected 11")]
    FieldCount {
        /// Record number.
        record: usize,
        /// Field count found.
        got: usize,
    },
    /// A metric value is not a number.
    #[error("record {record}: column {column}: {value:?} is not a number")]
    Number {
        /// Record number.
        record: usize,
        /// Column name.
        column: &'static str,
        /// The text found.
        value: String,
    },
    /// A quoted field is never closed, or a quote appears inside an unquoted field.
    #[error("record {record}: bad quoting")]
    Quote {
        /// Record number.
        record: usize,
    },
}

/// Metrics of one named case (the image file stem).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseMetrics {
    /// Case name (file stem).
    pub case: String,
    /// Its metrics.
    pub metrics: SegMetrics,
}

/// The CSV header line (without line end).
pub fn csv_header() -> String {
    std::iter::once("case")
        .chain(SegMetrics::FIELD_NAMES)
        .collect::<Vec<_>>()
        .join(",")
}

/// RFC 4180 field quoting (also quotes spaces so that trimming readers keep them).
fn quote(field: &str) -> String {
    if field.contains([',', '"', ' ', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

/// Renders the per-case CSV.
pub fn cases_csv(rows: &[CaseMetrics]) -> String {
    let mut out = csv_header();
    out.push('\n');
    for row in rows {
        out.push_str(&quote(&row.case));
        for v in row.metrics.values() {
            out.push(',');
            out.push_str(&v.to_string());
        }
        out.push('\n');
    }
    out
}

/// Splits RFC 4180 text into records of fields (accepts `\n` and `\r\n` line ends).
fn split_records(text: &str) -> Result<Vec<Vec<String>>, CsvError> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut in_quotes = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !was_quoted => {
                in_quotes = true;
                was_quoted = true;
            }
            '"' => {
                return Err(CsvError::Quote {
                    record: records.len() + 1,
                });
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                was_quoted = false;
            }
            _ if was_quoted => {
                return Err(CsvError::Quote {
                    record: records.len() + 1,
                });
            }
            _ => field.push(c),
        }
    }
    if in_quotes {
        return Err(CsvError::Quote {
            record: records.len() + 1,
        });
    }
    if !field.is_empty() || was_quoted || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

/// Parses a per-case CSV written by [`cases_csv`].
pub fn parse_cases_csv(text: &str) -> Result<Vec<CaseMetrics>, CsvError> {
    let records = split_records(text)?;
    let expected = csv_header();
    let found = records.first().map(|r| r.join(",")).unwrap_or_default();
    if found != expected {
        return Err(CsvError::Header { found, expected });
    }
    records
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, rec)| {
            let record = i + 1;
            if rec.len() != 11 {
                return Err(CsvError::FieldCount {
                    record,
                    got: rec.len(),
                });
            }
            let mut values = [0.0; 10];
            for ((v, text), column) in values
                .iter_mut()
                .zip(&rec[1..])
                .zip(SegMetrics::FIELD_NAMES)
            {
                *v = text.parse().map_err(|_| CsvError::Number {
                    record,
                    column,
                    value: text.clone(),
                })?;
            }
            Ok(CaseMetrics {
                case: rec[0].clone(),
                metrics: SegMetrics::from_values(values),
            })
        })
        .collect()
}

/// Writes the per-case CSV atomically.
pub fn write_cases_csv(path: &Path, rows: &[CaseMetrics]) -> Result<(), ReportError> {
    write_atomic(path, cases_csv(rows).as_bytes())
}

/// Reads a per-case CSV written by [`write_cases_csv`].
pub fn read_cases_csv(path: &Path) -> Result<Vec<CaseMetrics>, ReportError> {
    let text = fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_cases_csv(&text).map_err(|source| ReportError::Csv {
        path: path.to_owned(),
        source,
    })
}

fn mean_std(summary: &MetricSummary, field: usize) -> Value {
    json!({ "mean": summary.mean.values()[field], "std": summary.std.values()[field] })
}

/// The `summary.json` document (layout in the module docs); `meta` is stored verbatim.
pub fn summary_json(summary: &MetricSummary, meta: Value) -> Value {
    let mut metrics = Map::new();
    let mut compat = Map::new();
    for (i, name) in SegMetrics::FIELD_NAMES.iter().enumerate() {
        match name.strip_suffix("_compat") {
            Some(base) => compat.insert(base.to_owned(), mean_std(summary, i)),
            None => metrics.insert((*name).to_owned(), mean_std(summary, i)),
        };
    }
    json!({
        "n_cases": summary.n,
        "threshold": THRESHOLD,
        "threshold_rule": format!("p > {THRESHOLD}"),
        "std": "sample standard deviation (ddof = 1); 0 when n_cases = 1",
        "metrics": metrics,
        "compat": compat,
        "meta": meta,
    })
}

/// Writes `summary.json` atomically (pretty-printed).
pub fn write_summary_json(
    path: &Path,
    summary: &MetricSummary,
    meta: Value,
) -> Result<(), ReportError> {
    let mut text =
        serde_json::to_string_pretty(&summary_json(summary, meta)).map_err(|source| {
            ReportError::Json {
                path: path.to_owned(),
                source,
            }
        })?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Writes `bytes` to `<path>.tmp`, syncs it, then renames it over `path`; removes the
/// temporary file on failure.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|source| {
        let _ = fs::remove_file(&tmp);
        ReportError::Write {
            path: path.to_owned(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(seed: f64) -> SegMetrics {
        let mut v = [0.0; 10];
        for (i, x) in v.iter_mut().enumerate() {
            *x = seed / (i as f64 + 3.0);
        }
        SegMetrics::from_values(v)
    }

    #[test]
    fn csv_round_trip_with_awkward_stems() {
        let rows = vec![
            CaseMetrics {
                case: "benign (12), \"left\"".into(),
                metrics: metrics(0.7),
            },
            CaseMetrics {
                case: "case_0001".into(),
                metrics: metrics(1.0 / 3.0),
            },
            CaseMetrics {
                case: "two\nlines".into(),
                metrics: SegMetrics::from_values([
                    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0,
                ]),
            },
        ];
        let text = cases_csv(&rows);
        assert!(text.starts_with(
            "case,iou,dice,precision,recall,specificity,accuracy,f1,hd95,iou_compat,dice_compat\n"
        ));
        assert!(text.contains("\"benign (12), \"\"left\"\"\",0.2333"));
        assert!(text.contains("\ncase_0001,"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cases.csv");
        write_cases_csv(&path, &rows).unwrap();
        assert!(!dir.path().join("cases.csv.tmp").exists());
        assert_eq!(read_cases_csv(&path).unwrap(), rows);
        // CRLF line ends parse too.
        assert_eq!(
            parse_cases_csv(&text.replace('\n', "\r\n")).unwrap()[1],
            rows[1]
        );
    }

    #[test]
    fn csv_errors_are_reported() {
        let h = csv_header();
        assert!(matches!(
            parse_cases_csv("case,iou\n"),
            Err(CsvError::Header { .. })
        ));
        assert_eq!(
            parse_cases_csv(&format!("{h}\na,1,2\n")),
            Err(CsvError::FieldCount { record: 2, got: 3 })
        );
        assert!(matches!(
            parse_cases_csv(&format!("{h}\na,x,1,1,1,1,1,1,1,1,1\n")),
            Err(CsvError::Number {
                record: 2,
                column: "iou",
                ..
            })
        ));
        assert_eq!(
            parse_cases_csv(&format!("{h}\n\"a,1\n")),
            Err(CsvError::Quote { record: 2 })
        );
        let dir = tempfile::tempdir().unwrap();
        let err = read_cases_csv(&dir.path().join("missing.csv")).unwrap_err();
        assert!(err.to_string().contains("missing.csv"));
    }

    #[test]
    fn summary_json_fields_match_hand_computed() {
        let mk = |iou: f64, hd: f64, iou_c: f64| {
            let mut v = [1.0; 10];
            v[0] = iou;
            v[7] = hd;
            v[8] = iou_c;
            SegMetrics::from_values(v)
        };
        let cases = [mk(0.5, 2.0, 0.5), mk(0.7, 4.0, 0.6), mk(0.9, 9.0, 1.0)];
        let summary = MetricSummary::from_metrics(&cases).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        let meta = json!({"run": "runs/x", "split": "test", "checkpoint": "best.mpk"});
        write_summary_json(&path, &summary, meta.clone()).unwrap();
        assert!(!dir.path().join("summary.json.tmp").exists());
        let v: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let close = |x: &Value, want: f64| (x.as_f64().unwrap() - want).abs() < 1e-12;
        assert_eq!(v["n_cases"], 3);
        assert_eq!(v["meta"], meta);
        assert_eq!(v["threshold_rule"], "p > 0.5");
        // iou: mean 0.7, deviations ±0.2, 0 → var 0.08/2 = 0.04 → std 0.2.
        assert!(close(&v["metrics"]["iou"]["mean"], 0.7));
        assert!(close(&v["metrics"]["iou"]["std"], 0.2));
        // hd95: mean 5, deviations -3, -1, 4 → 26/2 = 13.
        assert!(close(&v["metrics"]["hd95"]["mean"], 5.0));
        assert!(close(&v["metrics"]["hd95"]["std"], 13f64.sqrt()));
        // compat iou: mean 0.7, deviations -0.2, -0.1, 0.3 → 0.14/2 = 0.07.
        assert!(close(&v["compat"]["iou"]["mean"], 0.7));
        assert!(close(&v["compat"]["iou"]["std"], 0.07f64.sqrt()));
        assert!(close(&v["compat"]["dice"]["std"], 0.0));
        for name in [
            "iou",
            "dice",
            "precision",
            "recall",
            "specificity",
            "accuracy",
            "f1",
            "hd95",
        ] {
            assert!(v["metrics"][name]["mean"].is_number(), "{name}");
            assert!(v["metrics"][name]["std"].is_number(), "{name}");
        }
        assert_eq!(v["metrics"].as_object().unwrap().len(), 8);
        assert_eq!(v["compat"].as_object().unwrap().len(), 2);
    }

    #[test]
    fn atomic_write_replaces_and_reports_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let bad = dir.path().join("no_such_dir").join("x.json");
        let err = write_atomic(&bad, b"x").unwrap_err();
        assert!(err.to_string().contains("no_such_dir"));
    }
}
