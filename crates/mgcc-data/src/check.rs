//! `check`: decode every image and mask of a dataset and list every problem by file name.
//!
//! Errors: missing/empty folder, image without mask, mask without image, unreadable, corrupt or
//! truncated file, image/mask size mismatch, non-binary mask (see [`crate::mask`]), bad
//! manifest. Warnings: empty or all-lesion mask, colour mask, one stem with several image
//! extensions, ignored files, manifest rows that disagree with the files.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{DataError, ImageFault};
use crate::image_io::read_image;
use crate::layout::{self, MANIFEST_FILE, Scan};
use crate::manifest::read_manifest;
use crate::mask::{LISTED_VALUES, distinct_levels, ensure_binary, histogram, mask_levels};

/// What kind of problem a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProblemKind {
    MissingFolder,
    EmptyFolder,
    /// Unreadable, corrupt, truncated or unsupported file.
    BadImage(ImageFault),
    MissingMask,
    OrphanMask,
    SizeMismatch,
    NonBinaryMask,
    BadManifest,
    /// Warning: the mask has no lesion pixel.
    EmptyMask,
    /// Warning: every pixel of the mask is lesion.
    FullMask,
    /// Warning: the mask is stored in colour (its level is max(R, G, B)).
    ColorMask,
    /// Warning: several image files share one stem.
    DuplicateStem,
    /// Warning: a file in `images/` or `masks/0/` that is not read.
    IgnoredFile,
    /// Warning: `manifest.csv` disagrees with the files.
    ManifestMismatch,
}

/// One finding: the file it is about and a one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub path: PathBuf,
    pub message: String,
}

impl Problem {
    pub fn new(kind: ProblemKind, path: &Path, message: impl Into<String>) -> Self {
        Problem {
            kind,
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    /// A problem from a decode error (path and message taken from the error).
    pub fn from_error(err: &DataError, fallback: &Path) -> Self {
        let path = err.path().unwrap_or(fallback);
        let kind = match err {
            DataError::Image { fault, .. } => ProblemKind::BadImage(*fault),
            DataError::Io { .. } => ProblemKind::BadImage(ImageFault::Unreadable),
            DataError::SizeMismatch { .. } => ProblemKind::SizeMismatch,
            DataError::NonBinaryMask { .. } => ProblemKind::NonBinaryMask,
            _ => ProblemKind::BadImage(ImageFault::Corrupt),
        };
        let full = err.to_string();
        let prefix = format!("{}: ", path.display());
        let message = full.strip_prefix(&prefix).unwrap_or(&full).to_owned();
        Problem::new(kind, path, message)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// The result of [`check_dataset`].
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub root: PathBuf,
    /// Distinct image stems in `images/`.
    pub images: usize,
    /// Masks in `masks/0/`.
    pub masks: usize,
    /// Stems with both an image and a mask.
    pub pairs: usize,
    /// (min, max) over readable images.
    pub width_range: Option<(u32, u32)>,
    pub height_range: Option<(u32, u32)>,
    /// Lesion fraction (lesion pixels / pixels) over readable pairs: (min, mean, max).
    pub lesion_fraction: Option<(f64, f64, f64)>,
    /// Distinct mask levels over all readable masks, first few.
    pub mask_values: Vec<u8>,
    /// Number of distinct mask levels over all readable masks.
    pub mask_value_count: usize,
    /// Images per class from `manifest.csv` (only stems present in `images/`).
    pub classes: Option<BTreeMap<String, usize>>,
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

impl CheckReport {
    /// True when there is no error (warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// Errors of `kind`.
    pub fn errors_of(&self, kind: ProblemKind) -> impl Iterator<Item = &Problem> {
        self.errors.iter().filter(move |p| p.kind == kind)
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "dataset {}", self.root.display())?;
        writeln!(
            f,
            "  images: {}  masks: {}  pairs: {}",
            self.images, self.masks, self.pairs
        )?;
        if let (Some(w), Some(h)) = (self.width_range, self.height_range) {
            writeln!(
                f,
                "  image size: width {}–{}, height {}–{}",
                w.0, w.1, h.0, h.1
            )?;
        }
        if let Some((lo, mean, hi)) = self.lesion_fraction {
            writeln!(
                f,
                "  lesion fraction: min {lo:.4}  mean {mean:.4}  max {hi:.4}"
            )?;
        }
        if self.mask_value_count > 0 {
            let mut v: Vec<String> = self.mask_values.iter().map(u8::to_string).collect();
            if self.mask_value_count > self.mask_values.len() {
                v.push("…".into());
            }
            writeln!(
                f,
                "  mask values ({} distinct): {}",
                self.mask_value_count,
                v.join(", ")
            )?;
        }
        if let Some(classes) = &self.classes {
            let c: Vec<String> = classes.iter().map(|(k, n)| format!("{k} {n}")).collect();
            writeln!(f, "  classes (manifest.csv): {}", c.join(", "))?;
        }
        for (title, list) in [("errors", &self.errors), ("warnings", &self.warnings)] {
            if !list.is_empty() {
                writeln!(f, "{title} ({}):", list.len())?;
                for p in list {
                    writeln!(f, "  {p}")?;
                }
            }
        }
        if self.is_ok() {
            write!(f, "OK ({})", count(self.warnings.len(), "warning"))
        } else {
            write!(
                f,
                "FAILED: {}, {}",
                count(self.errors.len(), "error"),
                count(self.warnings.len(), "warning")
            )
        }
    }
}

/// `1 error`, `2 errors`.
pub fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// Findings for one stem.
#[derive(Default)]
pub(crate) struct StemResult {
    size: Option<(u32, u32)>,
    lesion_fraction: Option<f64>,
    hist: Option<[u64; 256]>,
    pub(crate) errors: Vec<Problem>,
    warnings: Vec<Problem>,
}

pub(crate) fn check_stem(image: &Path, mask: Option<&Path>, expected_mask: &Path) -> StemResult {
    let mut r = StemResult::default();
    let img_size = match read_image(image) {
        Ok(img) => Some((img.width(), img.height())),
        Err(e) => {
            r.errors.push(Problem::from_error(&e, image));
            None
        }
    };
    r.size = img_size;
    let Some(mask) = mask else {
        r.errors.push(Problem::new(
            ProblemKind::MissingMask,
            image,
            format!("image has no mask (expected {})", expected_mask.display()),
        ));
        return r;
    };
    let decoded = match read_image(mask) {
        Ok(m) => m,
        Err(e) => {
            r.errors.push(Problem::from_error(&e, mask));
            return r;
        }
    };
    if decoded.color().has_color() || decoded.color().has_alpha() {
        r.warnings.push(Problem::new(
            ProblemKind::ColorMask,
            mask,
            format!(
                "mask is stored as {:?}; read as level max(R,G,B), 0 where transparent",
                decoded.color()
            ),
        ));
    }
    let levels = mask_levels(&decoded);
    if let Some(isz) = img_size
        && isz != levels.dimensions()
    {
        let e = DataError::SizeMismatch {
            image: image.to_path_buf(),
            mask: mask.to_path_buf(),
            image_size: isz,
            mask_size: levels.dimensions(),
        };
        r.errors.push(Problem::from_error(&e, mask));
    }
    let hist = histogram(&levels);
    if let Err(e) = ensure_binary(mask, &hist) {
        r.errors.push(Problem::from_error(&e, mask));
    }
    let total = u64::from(levels.width()) * u64::from(levels.height());
    let lesion = total - hist[0];
    if total > 0 && lesion == 0 {
        r.warnings.push(Problem::new(
            ProblemKind::EmptyMask,
            mask,
            "mask is empty (no lesion pixel)",
        ));
    } else if total > 0 && lesion == total {
        r.warnings.push(Problem::new(
            ProblemKind::FullMask,
            mask,
            "every pixel of the mask is lesion",
        ));
    }
    if total > 0 {
        r.lesion_fraction = Some(lesion as f64 / total as f64);
    }
    r.hist = Some(hist);
    r
}

/// Problems visible from the file listing alone.
fn listing_problems(root: &Path, s: &Scan, report: &mut CheckReport) {
    let idir = layout::images_dir(root);
    let mdir = layout::masks_dir(root);
    if !s.has_images_dir {
        report.errors.push(Problem::new(
            ProblemKind::MissingFolder,
            &idir,
            "missing folder: a dataset needs images/STEM.{png,jpg,jpeg,bmp}",
        ));
    } else if s.images.is_empty() {
        report.errors.push(Problem::new(
            ProblemKind::EmptyFolder,
            &idir,
            "empty folder: no .png/.jpg/.jpeg/.bmp images",
        ));
    }
    if !s.has_masks_dir {
        report.errors.push(Problem::new(
            ProblemKind::MissingFolder,
            &mdir,
            "missing folder: a labelled dataset needs masks/0/STEM.png",
        ));
    } else if s.masks.is_empty() {
        report.errors.push(Problem::new(
            ProblemKind::EmptyFolder,
            &mdir,
            "empty folder: no .png masks",
        ));
    }
    for (stem, paths) in &s.images {
        if paths.len() > 1 {
            let names: Vec<String> = paths[1..].iter().map(|p| p.display().to_string()).collect();
            report.warnings.push(Problem::new(
                ProblemKind::DuplicateStem,
                &paths[0],
                format!(
                    "stem `{stem}` also has {}; this file is used",
                    names.join(", ")
                ),
            ));
        }
    }
    for (p, why) in &s.broken {
        report.warnings.push(Problem::new(
            ProblemKind::IgnoredFile,
            p,
            format!("{why}; not named like an image, ignored"),
        ));
    }
    for p in &s.other_images {
        report.warnings.push(Problem::new(
            ProblemKind::IgnoredFile,
            p,
            "not a .png/.jpg/.jpeg/.bmp image, ignored",
        ));
    }
    for p in &s.other_masks {
        report.warnings.push(Problem::new(
            ProblemKind::IgnoredFile,
            p,
            "masks must be .png, ignored",
        ));
    }
    for (stem, mask) in &s.masks {
        if !s.images.contains_key(stem) {
            report.errors.push(Problem::new(
                ProblemKind::OrphanMask,
                mask,
                format!(
                    "mask has no image `{stem}.{{png,jpg,jpeg,bmp}}` in {}",
                    idir.display()
                ),
            ));
        }
    }
}

/// Compare `manifest.csv` with the files; fills `report.classes`.
fn manifest_problems(
    root: &Path,
    s: &Scan,
    sizes: &HashMap<&str, (u32, u32)>,
    report: &mut CheckReport,
) {
    let path = root.join(MANIFEST_FILE);
    if !path.is_file() {
        return;
    }
    let rows = match read_manifest(&path) {
        Ok(rows) => rows,
        Err(e) => {
            let mut p = Problem::from_error(&e, &path);
            p.kind = ProblemKind::BadManifest;
            report.errors.push(p);
            return;
        }
    };
    let mut classes = BTreeMap::new();
    let mut listed = std::collections::HashSet::new();
    for row in &rows {
        listed.insert(row.stem.as_str());
        if !s.images.contains_key(&row.stem) {
            report.warnings.push(Problem::new(
                ProblemKind::ManifestMismatch,
                &path,
                format!("row `{}` has no image", row.stem),
            ));
            continue;
        }
        *classes.entry(row.class.clone()).or_insert(0) += 1;
        if let Some(&(w, h)) = sizes.get(row.stem.as_str())
            && (w, h) != (row.width, row.height)
        {
            report.warnings.push(Problem::new(
                ProblemKind::ManifestMismatch,
                &path,
                format!(
                    "row `{}` says {}×{} but the image is {w}×{h}",
                    row.stem, row.width, row.height
                ),
            ));
        }
    }
    for (stem, paths) in &s.images {
        if !listed.contains(stem.as_str()) {
            report.warnings.push(Problem::new(
                ProblemKind::ManifestMismatch,
                &paths[0],
                format!("image is not listed in {}", path.display()),
            ));
        }
    }
    report.classes = Some(classes);
}

/// Check the dataset at `root` (see the module doc). Never fails: every problem is in the report.
pub fn check_dataset(root: &Path) -> CheckReport {
    let mut report = CheckReport {
        root: root.to_path_buf(),
        ..Default::default()
    };
    if !root.is_dir() {
        report.errors.push(Problem::new(
            ProblemKind::MissingFolder,
            root,
            "missing folder: dataset folder not found",
        ));
        return report;
    }
    let s = match layout::scan(root) {
        Ok(s) => s,
        Err(e) => {
            report.errors.push(Problem::from_error(&e, root));
            return report;
        }
    };
    report.images = s.images.len();
    report.masks = s.masks.len();
    report.pairs = s.images.keys().filter(|k| s.masks.contains_key(*k)).count();
    listing_problems(root, &s, &mut report);

    let stems: Vec<(&String, &PathBuf)> = s.images.iter().map(|(k, v)| (k, &v[0])).collect();
    let results: Vec<StemResult> = stems
        .par_iter()
        .map(|(stem, image)| {
            let expected = layout::mask_path(root, stem);
            check_stem(image, s.masks.get(*stem).map(PathBuf::as_path), &expected)
        })
        .collect();

    let mut sizes = HashMap::new();
    let mut hist = [0u64; 256];
    let mut fractions = Vec::new();
    for ((stem, _), r) in stems.iter().zip(results) {
        if let Some(sz) = r.size {
            sizes.insert(stem.as_str(), sz);
        }
        if let Some(h) = r.hist {
            for (a, b) in hist.iter_mut().zip(h) {
                *a += b;
            }
        }
        fractions.extend(r.lesion_fraction);
        report.errors.extend(r.errors);
        report.warnings.extend(r.warnings);
    }
    let range = |f: fn(&(u32, u32)) -> u32| {
        let v = sizes.values().map(f);
        Some((v.clone().min()?, v.max()?))
    };
    report.width_range = range(|s| s.0);
    report.height_range = range(|s| s.1);
    if !fractions.is_empty() {
        let lo = fractions.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = fractions.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let mean = fractions.iter().sum::<f64>() / fractions.len() as f64;
        report.lesion_fraction = Some((lo, mean, hi));
    }
    let values = distinct_levels(&hist);
    report.mask_value_count = values.len();
    report.mask_values = values.into_iter().take(LISTED_VALUES).collect();
    manifest_problems(root, &s, &sizes, &mut report);
    report
        .errors
        .sort_by(|a, b| (&a.path, a.kind).cmp(&(&b.path, b.kind)));
    report
        .warnings
        .sort_by(|a, b| (&a.path, a.kind).cmp(&(&b.path, b.kind)));
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{images_dir, mask_path, masks_dir};
    use crate::manifest::{ManifestRow, write_manifest};
    use crate::test_util::{write_dyn, write_gray, write_mask};
    use image::{DynamicImage, GrayImage, Luma};

    fn clean(root: &Path, stems: &[&str]) {
        for (i, s) in stems.iter().enumerate() {
            write_gray(
                &images_dir(root).join(format!("{s}.png")),
                8,
                6 + i as u32,
                100,
            );
            write_mask(&mask_path(root, s), 8, 6 + i as u32, &[(1, 1), (2, 2)]);
        }
    }

    fn kinds_for(r: &CheckReport, name: &str) -> Vec<ProblemKind> {
        r.errors
            .iter()
            .filter(|p| p.path.file_name().and_then(|n| n.to_str()) == Some(name))
            .map(|p| p.kind)
            .collect()
    }

    #[test]
    fn clean_dataset_passes() {
        let t = tempfile::tempdir().unwrap();
        clean(t.path(), &["a", "benign (3)", "c"]);
        let rows: Vec<ManifestRow> = ["a", "benign (3)", "c"]
            .iter()
            .enumerate()
            .map(|(i, s)| ManifestRow {
                stem: s.to_string(),
                class: if i == 0 { "malignant" } else { "benign" }.into(),
                width: 8,
                height: 6 + i as u32,
                lesion_pixels: 2,
                mask_files: 1,
            })
            .collect();
        write_manifest(&t.path().join(MANIFEST_FILE), &rows).unwrap();
        let r = check_dataset(t.path());
        assert!(r.is_ok(), "{r}");
        assert!(r.warnings.is_empty(), "{r}");
        assert_eq!((r.images, r.masks, r.pairs), (3, 3, 3));
        assert_eq!(r.width_range, Some((8, 8)));
        assert_eq!(r.height_range, Some((6, 8)));
        assert_eq!(r.mask_values, vec![0, 255]);
        let classes = r.classes.clone().unwrap();
        assert_eq!((classes["benign"], classes["malignant"]), (2, 1));
        let text = r.to_string();
        assert!(
            text.contains("classes (manifest.csv): benign 2, malignant 1"),
            "{text}"
        );
        assert!(text.ends_with("OK (0 warnings)"), "{text}");
    }

    #[test]
    fn finds_every_planted_fault_by_name() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        clean(
            root,
            &["good", "corrupt", "trunc", "size", "nonbin", "badmask"],
        );
        // Corrupt image: garbage bytes with a .png name.
        std::fs::write(images_dir(root).join("corrupt.png"), b"not a png at all").unwrap();
        // Truncated image: first half of a real PNG.
        let big = images_dir(root).join("trunc.png");
        write_gray(&big, 64, 64, 3);
        write_mask(&mask_path(root, "trunc"), 64, 64, &[(1, 1)]);
        let bytes = std::fs::read(&big).unwrap();
        std::fs::write(&big, &bytes[..bytes.len() / 2]).unwrap();
        // Size mismatch.
        write_mask(&mask_path(root, "size"), 9, 9, &[(1, 1)]);
        // Non-binary (anti-aliased) mask.
        let mut m = GrayImage::new(8, 10);
        m.put_pixel(0, 0, Luma([255]));
        m.put_pixel(1, 0, Luma([128]));
        write_dyn(&mask_path(root, "nonbin"), &DynamicImage::ImageLuma8(m));
        // Corrupt mask.
        std::fs::write(mask_path(root, "badmask"), b"\x89PNG junk").unwrap();
        // Missing mask and orphan mask.
        write_gray(&images_dir(root).join("lonely.png"), 8, 6, 1);
        write_mask(&mask_path(root, "orphan"), 8, 6, &[]);
        // Warnings: empty mask, duplicate stem, stray file.
        write_mask(&mask_path(root, "good"), 8, 6, &[]);
        write_gray(&images_dir(root).join("good.bmp"), 8, 6, 1);
        std::fs::write(images_dir(root).join("Thumbs.db"), b"x").unwrap();

        let r = check_dataset(root);
        assert!(!r.is_ok());
        assert_eq!(
            kinds_for(&r, "corrupt.png"),
            vec![ProblemKind::BadImage(ImageFault::Corrupt)]
        );
        assert_eq!(
            kinds_for(&r, "trunc.png"),
            vec![ProblemKind::BadImage(ImageFault::Truncated)]
        );
        assert_eq!(kinds_for(&r, "size.png"), vec![ProblemKind::SizeMismatch]);
        assert_eq!(
            kinds_for(&r, "nonbin.png"),
            vec![ProblemKind::NonBinaryMask]
        );
        assert_eq!(kinds_for(&r, "lonely.png"), vec![ProblemKind::MissingMask]);
        assert_eq!(kinds_for(&r, "orphan.png"), vec![ProblemKind::OrphanMask]);
        assert_eq!(kinds_for(&r, "badmask.png").len(), 1);
        assert_eq!(r.errors.len(), 7, "{r}");
        let nonbin = r.errors_of(ProblemKind::NonBinaryMask).next().unwrap();
        assert!(
            nonbin.message.contains("3 distinct values (0, 128, 255)"),
            "{nonbin}"
        );
        let wk: Vec<ProblemKind> = r.warnings.iter().map(|p| p.kind).collect();
        assert!(wk.contains(&ProblemKind::EmptyMask), "{r}");
        assert!(wk.contains(&ProblemKind::DuplicateStem), "{r}");
        assert!(wk.contains(&ProblemKind::IgnoredFile), "{r}");
        let text = r.to_string();
        assert!(text.contains("FAILED: 7 errors"), "{text}");
        assert!(text.contains("trunc.png: truncated image"), "{text}");
    }

    #[test]
    fn empty_and_missing_folders() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(images_dir(t.path())).unwrap();
        std::fs::create_dir_all(masks_dir(t.path())).unwrap();
        let r = check_dataset(t.path());
        let kinds: Vec<_> = r.errors.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            vec![ProblemKind::EmptyFolder, ProblemKind::EmptyFolder],
            "{r}"
        );
        assert!(r.errors[0].path.ends_with("images") || r.errors[1].path.ends_with("images"));

        let r = check_dataset(&t.path().join("nope"));
        assert_eq!(r.errors[0].kind, ProblemKind::MissingFolder);
        let bare = t.path().join("bare");
        std::fs::create_dir_all(&bare).unwrap();
        let r = check_dataset(&bare);
        assert_eq!(r.errors.len(), 2, "{r}");
        assert!(
            r.errors
                .iter()
                .all(|p| p.kind == ProblemKind::MissingFolder)
        );
    }
}
