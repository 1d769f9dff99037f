//! The training history: one row per iteration in `RUN/metrics.csv`.
//!
//! Columns: `iteration` (steps completed after this one), `lr` (used for this step),
//! `sup_loss`, `cons_loss`, `cons_weight`, and, on rows where validation ran, the mean validation
//! metrics (`val_iou`, `val_dice`, `val_iou_compat`, `val_dice_compat`, `val_precision`,
//! `val_recall`, `val_hd95`). Empty cells mean "not validated at this iteration".
//!
//! On resume the file is cut back to the checkpoint's iteration, so it always describes the
//! weights that training continues from.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::TrainError;

/// Mean validation metrics stored in the history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValRow {
    pub iou: f64,
    pub dice: f64,
    pub iou_compat: f64,
    pub dice_compat: f64,
    pub precision: f64,
    pub recall: f64,
    pub hd95: f64,
}

/// One iteration of training.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub iteration: usize,
    pub lr: f64,
    pub sup_loss: f64,
    pub cons_loss: f64,
    pub cons_weight: f64,
    pub val: Option<ValRow>,
}

const HEADER: &str = "iteration,lr,sup_loss,cons_loss,cons_weight,val_iou,val_dice,val_iou_compat,val_dice_compat,val_precision,val_recall,val_hd95";

impl Row {
    fn to_csv(&self) -> String {
        let val = match &self.val {
            Some(v) => format!(
                "{},{},{},{},{},{},{}",
                v.iou, v.dice, v.iou_compat, v.dice_compat, v.precision, v.recall, v.hd95
            ),
            None => ",,,,,,".to_string(),
        };
        format!(
            "{},{},{},{},{},{}",
            self.iteration, self.lr, self.sup_loss, self.cons_loss, self.cons_weight, val
        )
    }

    fn from_csv(line: &str) -> Option<Row> {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != 12 {
            return None;
        }
        let f = |i: usize| cells[i].parse::<f64>().ok();
        let val = if cells[5].is_empty() {
            None
        } else {
            Some(ValRow {
                iou: f(5)?,
                dice: f(6)?,
                iou_compat: f(7)?,
                dice_compat: f(8)?,
                precision: f(9)?,
                recall: f(10)?,
                hd95: f(11)?,
            })
        };
        Some(Row {
            iteration: cells[0].parse().ok()?,
            lr: f(1)?,
            sup_loss: f(2)?,
            cons_loss: f(3)?,
            cons_weight: f(4)?,
            val,
        })
    }
}

/// The in-memory history and its CSV file.
pub struct History {
    path: PathBuf,
    pub rows: Vec<Row>,
    /// Rows not yet written to disk.
    pending: usize,
}

impl History {
    /// Start a new history file (overwrites nothing: the run folder is new).
    pub fn create(path: &Path) -> Result<Self, TrainError> {
        fs::write(path, format!("{HEADER}\n")).map_err(|e| TrainError::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            rows: Vec::new(),
            pending: 0,
        })
    }

    /// Read an existing history and cut it back to rows with `iteration <= upto`.
    pub fn resume(path: &Path, upto: usize) -> Result<Self, TrainError> {
        let mut rows = Vec::new();
        if path.is_file() {
            let text = fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
            for (i, line) in text.lines().enumerate().skip(1) {
                if line.trim().is_empty() {
                    continue;
                }
                let row = Row::from_csv(line).ok_or_else(|| TrainError::Checkpoint {
                    path: path.to_path_buf(),
                    message: format!("line {} is not a metrics row", i + 1),
                })?;
                if row.iteration <= upto {
                    rows.push(row);
                }
            }
        }
        let mut history = Self {
            path: path.to_path_buf(),
            rows,
            pending: 0,
        };
        history.rewrite()?;
        Ok(history)
    }

    /// Add a row (kept in memory until [`History::flush`]).
    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
        self.pending += 1;
    }

    /// Attach validation results to the latest row.
    pub fn set_last_val(&mut self, val: ValRow) {
        if let Some(last) = self.rows.last_mut() {
            last.val = Some(val);
        }
    }

    /// Append the pending rows to the file.
    pub fn flush(&mut self) -> Result<(), TrainError> {
        if self.pending == 0 {
            return Ok(());
        }
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| TrainError::io(&self.path, e))?;
        let start = self.rows.len() - self.pending;
        let mut text = String::new();
        for row in &self.rows[start..] {
            text.push_str(&row.to_csv());
            text.push('\n');
        }
        file.write_all(text.as_bytes())
            .map_err(|e| TrainError::io(&self.path, e))?;
        self.pending = 0;
        Ok(())
    }

    fn rewrite(&mut self) -> Result<(), TrainError> {
        let mut text = format!("{HEADER}\n");
        for row in &self.rows {
            text.push_str(&row.to_csv());
            text.push('\n');
        }
        let tmp = self.path.with_extension("csv.tmp");
        fs::write(&tmp, text).map_err(|e| TrainError::io(&tmp, e))?;
        fs::rename(&tmp, &self.path).map_err(|e| TrainError::io(&self.path, e))?;
        self.pending = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: usize, val: bool) -> Row {
        Row {
            iteration: i,
            lr: 0.01 / i as f64,
            sup_loss: 1.0 / i as f64,
            cons_loss: 0.5,
            cons_weight: 0.25,
            val: val.then_some(ValRow {
                iou: 0.5,
                dice: 0.6,
                iou_compat: 0.51,
                dice_compat: 0.61,
                precision: 0.7,
                recall: 0.8,
                hd95: 3.5,
            }),
        }
    }

    #[test]
    fn flush_and_resume_cut_back_to_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        let mut h = History::create(&path).unwrap();
        for i in 1..=5 {
            h.push(row(i, i == 3));
        }
        h.flush().unwrap();
        let back = History::resume(&path, 3).unwrap();
        assert_eq!(back.rows, vec![row(1, false), row(2, false), row(3, true)]);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 4, "{text}");
    }
}
