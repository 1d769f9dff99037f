//! `import-busi`: convert the Kaggle BUSI release (`benign/`, `malignant/`, `normal/` with
//! `STEM.png`, `STEM_mask.png` and sometimes `STEM_mask_1.png`, `STEM_mask_2.png`, …) into the
//! MGCC layout. Masks of one image are merged by pixel-wise OR of their lesion maps (see
//! [`crate::mask`]) and written as 0/255 gray PNG; images are copied byte for byte after a
//! successful decode.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use image::GrayImage;
use rayon::prelude::*;

use crate::error::{DataError, Result};
use crate::image_io::{read_image, write_png};
use crate::layout::{self, MANIFEST_FILE, image_extension_rank, stem_of};
use crate::manifest::{ManifestRow, write_manifest};
use crate::mask::mask_levels;
use crate::safe_fs::{Staging, write_atomic};

/// Class folders of the release, in output order.
pub const BUSI_CLASSES: [&str; 3] = ["benign", "malignant", "normal"];
/// Sub-folder name of the Kaggle download that holds the class folders.
pub const BUSI_SUBDIR: &str = "Dataset_BUSI_with_GT";

/// Options of [`import_busi`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Keep `normal/` images (all-zero masks); by default they are left out.
    pub include_normal: bool,
    /// Write into a non-empty output folder, replacing earlier imports there.
    pub force: bool,
}

/// What [`import_busi`] did.
#[derive(Debug, Clone)]
pub struct ImportSummary {
    /// The folder holding the class folders.
    pub source: PathBuf,
    pub out: PathBuf,
    /// Manifest rows, sorted by stem.
    pub rows: Vec<ManifestRow>,
    /// `normal/` images left out (without `include_normal`).
    pub skipped_normal: usize,
    /// Image or mask files of the previous output (replaced with `force`) not in the new one.
    pub removed_stale: usize,
}

impl ImportSummary {
    /// Images per class.
    pub fn class_counts(&self) -> BTreeMap<String, usize> {
        let mut c = BTreeMap::new();
        for r in &self.rows {
            *c.entry(r.class.clone()).or_insert(0) += 1;
        }
        c
    }

    /// Images whose mask was merged from two or more files.
    pub fn merged(&self) -> usize {
        self.rows.iter().filter(|r| r.mask_files > 1).count()
    }
}

/// One image to import.
#[derive(Debug)]
struct Entry {
    stem: String,
    class: &'static str,
    image: PathBuf,
    masks: Vec<PathBuf>,
}

/// The folder that holds the class folders: `src` or `src/Dataset_BUSI_with_GT`.
pub fn busi_root(src: &Path) -> Result<PathBuf> {
    let has_classes = |d: &Path| BUSI_CLASSES.iter().any(|c| d.join(c).is_dir());
    if !src.is_dir() {
        return Err(DataError::MissingFolder {
            path: src.to_path_buf(),
            what: "BUSI source folder not found".into(),
        });
    }
    if has_classes(src) {
        return Ok(src.to_path_buf());
    }
    let sub = src.join(BUSI_SUBDIR);
    if has_classes(&sub) {
        return Ok(sub);
    }
    Err(DataError::NotBusi {
        path: src.to_path_buf(),
        reason: format!("expected folders benign/, malignant/, normal/ here or in {BUSI_SUBDIR}/"),
    })
}

/// `Some((base, index))` for `base_mask` (index 0) and `base_mask_N` (index N).
fn parse_mask_stem(stem: &str) -> Option<(&str, u32)> {
    if let Some(base) = stem.strip_suffix("_mask") {
        return Some((base, 0));
    }
    let (head, num) = stem.rsplit_once('_')?;
    let base = head.strip_suffix("_mask")?;
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((base, num.parse().ok()?))
}

/// Pair images with their masks in one class folder.
fn plan_class(
    dir: &Path,
    class: &'static str,
    problems: &mut Vec<DataError>,
) -> Result<Vec<Entry>> {
    let mut images: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut masks: BTreeMap<String, Vec<(u32, PathBuf)>> = BTreeMap::new();
    let (files, broken) = crate::layout::list_dir(dir)?;
    for (path, detail) in broken {
        problems.push(DataError::Image {
            path,
            fault: crate::error::ImageFault::Unreadable,
            detail,
        });
    }
    for path in files {
        if image_extension_rank(&path).is_none() {
            tracing::warn!("{}: not an image, ignored", path.display());
            continue;
        }
        let stem = stem_of(&path)?;
        if let Some((base, idx)) = parse_mask_stem(&stem) {
            masks.entry(base.to_owned()).or_default().push((idx, path));
        } else if let Some(other) = images.insert(stem.clone(), path.clone()) {
            problems.push(DataError::DuplicateStem { path, other, stem });
        }
    }
    for (base, files) in masks.iter().filter(|(b, _)| !images.contains_key(*b)) {
        problems.push(DataError::OrphanMask {
            mask: files[0].1.clone(),
            stem: base.clone(),
            images_dir: dir.to_path_buf(),
        });
    }
    let mut entries = Vec::with_capacity(images.len());
    for (stem, image) in images {
        let mut m = masks.remove(&stem).unwrap_or_default();
        m.sort();
        if m.is_empty() && class != "normal" {
            problems.push(DataError::MissingMask {
                expected: dir.join(format!("{stem}_mask.png")),
                image,
            });
            continue;
        }
        entries.push(Entry {
            stem,
            class,
            image,
            masks: m.into_iter().map(|(_, p)| p).collect(),
        });
    }
    Ok(entries)
}

/// Decode one entry, merge its masks, write image and mask; returns its manifest row.
fn import_one(e: &Entry, out: &Path) -> Result<(ManifestRow, PathBuf)> {
    let img = read_image(&e.image)?;
    let (w, h) = (img.width(), img.height());
    let mut merged = GrayImage::new(w, h);
    for mpath in &e.masks {
        let levels = mask_levels(&read_image(mpath)?);
        crate::mask::ensure_binary(mpath, &crate::mask::histogram(&levels))?;
        if levels.dimensions() != (w, h) {
            return Err(DataError::SizeMismatch {
                image: e.image.clone(),
                mask: mpath.clone(),
                image_size: (w, h),
                mask_size: levels.dimensions(),
            });
        }
        for (dst, src) in merged.iter_mut().zip(levels.iter()) {
            if *src != 0 {
                *dst = 255;
            }
        }
    }
    let lesion_pixels = merged.iter().filter(|&&v| v != 0).count() as u64;
    let ext = e
        .image
        .extension()
        .and_then(|x| x.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| "png".into());
    let dst = layout::images_dir(out).join(format!("{}.{ext}", e.stem));
    let bytes =
        std::fs::read(&e.image).map_err(|err| DataError::io(&e.image, "cannot read", err))?;
    write_atomic(&dst, &bytes)?;
    write_png(&layout::mask_path(out, &e.stem), &merged)?;
    let row = ManifestRow {
        stem: e.stem.clone(),
        class: e.class.to_owned(),
        width: w,
        height: h,
        lesion_pixels,
        mask_files: e.masks.len() as u32,
    };
    Ok((row, dst))
}

/// Import the BUSI release at `src` (or `src/Dataset_BUSI_with_GT`) into `out`.
///
/// All or nothing: every name is paired and every file decoded (masks must match their
/// image's size and be binary) before the import counts; a missing mask, orphan mask,
/// duplicate stem or bad file is an error that lists every such file. A normal image without a
/// mask file gets an all-zero mask. The output is built beside `out` and moved into place when
/// complete; `out` must be absent or empty unless `force`, which replaces an earlier output
/// that mgcc wrote (see [`Staging::begin`]).
pub fn import_busi(src: &Path, out: &Path, opts: &ImportOptions) -> Result<ImportSummary> {
    let source = busi_root(src)?;
    crate::safe_fs::refuse_output_over_input(out, &[&source])?;
    let staging = Staging::begin(out, opts.force)?;
    let work = staging.path().to_path_buf();
    let mut problems = Vec::new();
    let mut entries = Vec::new();
    let mut skipped_normal = 0;
    for class in BUSI_CLASSES {
        let dir = source.join(class);
        if !dir.is_dir() {
            tracing::warn!("{}: class folder missing", dir.display());
            continue;
        }
        let planned = plan_class(&dir, class, &mut problems)?;
        if class == "normal" && !opts.include_normal {
            skipped_normal += planned.len();
            continue;
        }
        entries.extend(planned);
    }
    let mut seen: HashMap<&str, &Path> = HashMap::new();
    for e in &entries {
        if let Some(other) = seen.insert(&e.stem, &e.image) {
            problems.push(DataError::DuplicateStem {
                path: e.image.clone(),
                other: other.to_path_buf(),
                stem: e.stem.clone(),
            });
        }
    }
    if entries.is_empty() && problems.is_empty() {
        return Err(DataError::EmptyFolder {
            path: source,
            what: "no images to import".into(),
        });
    }
    entries.sort_by(|a, b| a.stem.cmp(&b.stem));
    for d in [layout::images_dir(&work), layout::masks_dir(&work)] {
        std::fs::create_dir_all(&d).map_err(|e| DataError::io(&d, "cannot create folder", e))?;
    }
    let results: Vec<Result<(ManifestRow, PathBuf)>> =
        entries.par_iter().map(|e| import_one(e, &work)).collect();
    let mut rows = Vec::with_capacity(results.len());
    let mut write_error = None;
    for r in results {
        match r {
            Ok((row, _)) => rows.push(row),
            // A failed write (full disk) is not a problem of the source: report it as such.
            Err(e @ (DataError::Io { .. } | DataError::Encode { .. }))
                if e.path().is_some_and(|p| p.starts_with(&work)) =>
            {
                write_error.get_or_insert(e.moved(&work, out));
            }
            Err(e) => problems.push(e.moved(&work, out)),
        }
    }
    if let Some(e) = write_error {
        return Err(e);
    }
    if problems.len() == 1 {
        return Err(problems.remove(0));
    }
    if !problems.is_empty() {
        // Nothing is written: the staging folder is removed when dropped.
        return Err(DataError::Invalid {
            problems: problems
                .iter()
                .map(|e| crate::check::Problem::from_error(e, &source))
                .collect(),
        });
    }
    write_manifest(&work.join(MANIFEST_FILE), &rows).map_err(|e| e.moved(&work, out))?;
    let removed_stale = staging.dropped_files(&[
        PathBuf::from(layout::IMAGES_DIR),
        PathBuf::from(layout::MASKS_DIR),
    ]);
    staging.commit()?;
    Ok(ImportSummary {
        source,
        out: out.to_path_buf(),
        rows,
        skipped_normal,
        removed_stale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Dataset;
    use crate::test_util::{write_dyn, write_gray, write_mask};
    use image::{DynamicImage, Rgb, RgbImage, Rgba, RgbaImage};

    /// A tiny release: 3 benign (one with 3 mask files incl. RGBA and RGB), 2 malignant
    /// (one with 2 masks), 2 normal (one with a mask file, one without).
    fn fake_busi(root: &Path) {
        let b = root.join("benign");
        write_gray(&b.join("benign (1).png"), 6, 4, 50);
        write_mask(&b.join("benign (1)_mask.png"), 6, 4, &[(0, 0)]);
        let mut rgba = RgbaImage::from_pixel(6, 4, Rgba([0, 0, 0, 255]));
        rgba.put_pixel(1, 1, Rgba([255, 255, 255, 255]));
        write_dyn(
            &b.join("benign (1)_mask_1.png"),
            &DynamicImage::ImageRgba8(rgba),
        );
        let mut rgb = RgbImage::new(6, 4);
        rgb.put_pixel(2, 2, Rgb([255, 255, 255]));
        rgb.put_pixel(1, 1, Rgb([255, 255, 255]));
        write_dyn(
            &b.join("benign (1)_mask_2.png"),
            &DynamicImage::ImageRgb8(rgb),
        );
        write_dyn(
            &b.join("benign (10).png"),
            &DynamicImage::ImageRgb8(RgbImage::from_pixel(5, 5, Rgb([9, 9, 9]))),
        );
        write_mask(&b.join("benign (10)_mask.png"), 5, 5, &[(4, 4), (3, 4)]);
        write_gray(&b.join("benign (2).png"), 3, 3, 1);
        write_mask(&b.join("benign (2)_mask.png"), 3, 3, &[]);
        let m = root.join("malignant");
        write_gray(&m.join("malignant (1).png"), 4, 4, 80);
        write_mask(&m.join("malignant (1)_mask.png"), 4, 4, &[(0, 0)]);
        write_mask(&m.join("malignant (1)_mask_1.png"), 4, 4, &[(3, 3)]);
        write_gray(&m.join("malignant (2).png"), 4, 4, 80);
        write_mask(&m.join("malignant (2)_mask.png"), 4, 4, &[(1, 2)]);
        let n = root.join("normal");
        write_gray(&n.join("normal (1).png"), 4, 4, 80);
        write_mask(&n.join("normal (1)_mask.png"), 4, 4, &[]);
        write_gray(&n.join("normal (2).png"), 4, 4, 80);
    }

    #[test]
    fn parse_mask_names() {
        assert_eq!(parse_mask_stem("benign (1)_mask"), Some(("benign (1)", 0)));
        assert_eq!(
            parse_mask_stem("benign (1)_mask_2"),
            Some(("benign (1)", 2))
        );
        assert_eq!(parse_mask_stem("benign (1)"), None);
        assert_eq!(parse_mask_stem("x_mask_"), None);
        assert_eq!(parse_mask_stem("x_y"), None);
    }

    #[test]
    fn imports_and_merges_masks() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("dl");
        fake_busi(&src.join(BUSI_SUBDIR));
        let out = t.path().join("busi");
        let s = import_busi(&src, &out, &ImportOptions::default()).unwrap();
        assert_eq!(s.rows.len(), 5);
        assert_eq!(s.skipped_normal, 2);
        assert_eq!(s.merged(), 2);
        let counts = s.class_counts();
        assert_eq!((counts["benign"], counts["malignant"]), (3, 2));
        assert!(!counts.contains_key("normal"));

        // OR of 3 masks (gray, RGBA, RGB): pixels (0,0), (1,1), (2,2).
        let m = read_image(&layout::mask_path(&out, "benign (1)"))
            .unwrap()
            .to_luma8();
        let lesion: Vec<(u32, u32)> = m
            .enumerate_pixels()
            .filter(|(_, _, p)| p.0[0] != 0)
            .map(|(x, y, _)| (x, y))
            .collect();
        assert_eq!(lesion, vec![(0, 0), (1, 1), (2, 2)]);
        assert!(m.iter().all(|&v| v == 0 || v == 255));
        let row = s.rows.iter().find(|r| r.stem == "benign (1)").unwrap();
        assert_eq!(
            (row.width, row.height, row.lesion_pixels, row.mask_files),
            (6, 4, 3, 3)
        );

        // The result is a valid dataset with a manifest.
        let ds = Dataset::open(&out).unwrap();
        assert_eq!(ds.samples.len(), 5);
        assert_eq!(ds.class_of("malignant (1)"), Some("malignant"));
        assert!(ds.sample("benign (10)").is_some());

        // A second import into the non-empty folder is refused, then forced.
        let err = import_busi(&src, &out, &ImportOptions::default()).unwrap_err();
        assert!(matches!(err, DataError::OutputExists { .. }), "{err}");
        let opts = ImportOptions {
            include_normal: true,
            force: true,
        };
        let s = import_busi(&src.join(BUSI_SUBDIR), &out, &opts).unwrap();
        assert_eq!(s.rows.len(), 7);
        assert_eq!(s.class_counts()["normal"], 2);
        let n2 = s.rows.iter().find(|r| r.stem == "normal (2)").unwrap();
        assert_eq!((n2.lesion_pixels, n2.mask_files), (0, 0));
        let zero = read_image(&layout::mask_path(&out, "normal (2)"))
            .unwrap()
            .to_luma8();
        assert!(zero.iter().all(|&v| v == 0));

        // Forcing back to the default removes the normal images of the earlier import.
        let s = import_busi(
            &src,
            &out,
            &ImportOptions {
                include_normal: false,
                force: true,
            },
        )
        .unwrap();
        assert_eq!(s.removed_stale, 4);
        assert_eq!(Dataset::open(&out).unwrap().samples.len(), 5);
    }

    #[test]
    fn size_mismatch_names_both_files() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        write_gray(&src.join("benign/benign (1).png"), 4, 4, 1);
        write_mask(&src.join("benign/benign (1)_mask.png"), 4, 4, &[]);
        write_mask(&src.join("benign/benign (1)_mask_1.png"), 5, 4, &[]);
        let err = import_busi(&src, &t.path().join("out"), &ImportOptions::default()).unwrap_err();
        let s = err.to_string();
        assert!(matches!(err, DataError::SizeMismatch { .. }), "{s}");
        assert!(
            s.contains("benign (1)_mask_1.png") && s.contains("benign (1).png"),
            "{s}"
        );
    }

    #[test]
    fn missing_and_orphan_masks_and_bad_source() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        write_gray(&src.join("malignant/malignant (3).png"), 4, 4, 1);
        let err = import_busi(&src, &t.path().join("o1"), &ImportOptions::default()).unwrap_err();
        assert!(err.to_string().contains("malignant (3)_mask.png"), "{err}");
        write_mask(&src.join("malignant/malignant (3)_mask.png"), 4, 4, &[]);
        write_mask(&src.join("malignant/malignant (4)_mask.png"), 4, 4, &[]);
        let err = import_busi(&src, &t.path().join("o2"), &ImportOptions::default()).unwrap_err();
        assert!(matches!(err, DataError::OrphanMask { .. }), "{err}");
        assert!(err.to_string().contains("malignant (4)_mask.png"), "{err}");
        let err =
            import_busi(t.path(), &t.path().join("o3"), &ImportOptions::default()).unwrap_err();
        assert!(matches!(err, DataError::NotBusi { .. }), "{err}");
    }
}
