//! `RUN/metrics.csv` of the generation-stage runs: a header of named columns and one row per
//! iteration; empty cells mean "not measured at this iteration" (validation columns).
//! On resume the file is cut back to the checkpoint's iteration.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::LdmError;

/// The table, kept in memory and appended to disk on `flush`.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    pub columns: Vec<String>,
    /// Rows: first cell is the iteration.
    pub rows: Vec<Vec<Option<f64>>>,
    written: usize,
}

impl MetricsLog {
    /// A new file with this header (`iteration` first).
    pub fn create(path: &Path, columns: &[&str]) -> Result<Self, LdmError> {
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        fs::write(path, format!("{}\n", columns.join(","))).map_err(|e| LdmError::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            columns,
            rows: Vec::new(),
            written: 0,
        })
    }

    /// Re-open, keeping rows with iteration ≤ `upto` (and rewriting the file to them).
    pub fn resume(path: &Path, columns: &[&str], upto: usize) -> Result<Self, LdmError> {
        let text = fs::read_to_string(path).unwrap_or_default();
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate().skip(1) {
            let cells: Vec<Option<f64>> = line
                .split(',')
                .map(|c| if c.is_empty() { None } else { c.parse().ok() })
                .collect();
            if cells.len() != columns.len() || cells[0].is_none() {
                return Err(LdmError::Checkpoint {
                    path: path.to_path_buf(),
                    message: format!("line {}: not a metrics row", i + 1),
                });
            }
            if cells[0].unwrap_or(f64::MAX) <= upto as f64 {
                rows.push(cells);
            }
        }
        let mut log = Self::create(path, columns)?;
        log.rows = rows;
        log.flush()?;
        Ok(log)
    }

    /// Add a row (cells in column order).
    pub fn push(&mut self, row: Vec<Option<f64>>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    /// Append unwritten rows to the file.
    pub fn flush(&mut self) -> Result<(), LdmError> {
        if self.written == self.rows.len() {
            return Ok(());
        }
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| LdmError::io(&self.path, e))?;
        let mut text = String::new();
        for row in &self.rows[self.written..] {
            let cells: Vec<String> = row
                .iter()
                .map(|c| c.map(|v| v.to_string()).unwrap_or_default())
                .collect();
            text.push_str(&cells.join(","));
            text.push('\n');
        }
        file.write_all(text.as_bytes())
            .map_err(|e| LdmError::io(&self.path, e))?;
        self.written = self.rows.len();
        Ok(())
    }

    /// `(iteration, value)` pairs of a column where it has a finite value.
    pub fn series(&self, column: &str) -> Vec<(f64, f64)> {
        let Some(j) = self.columns.iter().position(|c| c == column) else {
            return Vec::new();
        };
        self.rows
            .iter()
            .filter_map(|r| match (r[0], r[j]) {
                (Some(x), Some(y)) if y.is_finite() => Some((x, y)),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_cuts_rows_after_the_checkpoint_and_keeps_empty_cells() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        let cols = ["iteration", "loss", "val"];
        let mut log = MetricsLog::create(&path, &cols).unwrap();
        for i in 1..=5 {
            log.push(vec![
                Some(i as f64),
                Some(0.5 / i as f64),
                (i % 2 == 0).then_some(i as f64),
            ]);
        }
        log.flush().unwrap();
        let log = MetricsLog::resume(&path, &cols, 3).unwrap();
        assert_eq!(log.rows.len(), 3);
        assert_eq!(log.series("val"), vec![(2.0, 2.0)]);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 4);
        assert_eq!(text.lines().nth(1).unwrap(), "1,0.5,");
    }
}
