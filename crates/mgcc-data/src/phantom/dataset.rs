//! Writing a phantom dataset: `OUT/images/STEM.png`, `OUT/masks/0/STEM.png` (0/255) and
//! `OUT/manifest.csv`, images generated in parallel (each from its own RNG stream, so the
//! bytes do not depend on the thread count).

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{MIN_SIDE, PhantomClass, PhantomConfig, generate_one};
use crate::error::{DataError, Result};
use crate::image_io::write_png;
use crate::layout::{IMAGES_DIR, MANIFEST_FILE, MASKS_DIR, images_dir, mask_path, masks_dir};
use crate::manifest::{ManifestRow, write_manifest};
use crate::safe_fs::Staging;

/// Largest side accepted (keeps one image's working memory well under a gigabyte).
pub const MAX_SIDE: usize = 8192;

/// What [`write_dataset`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct PhantomSummary {
    pub out: PathBuf,
    pub images: usize,
    pub benign: usize,
    pub malignant: usize,
    pub width: usize,
    pub height: usize,
    /// Mean fraction of the image covered by the lesion.
    pub mean_lesion_fraction: f64,
    /// Images and masks of the previous output (replaced under `force`) not in the new set.
    pub removed_stale: usize,
}

/// Generate `cfg.n` images into `out`, all or nothing. `out` must be absent or empty unless
/// `force`; with `force` it is replaced as a whole, and only when mgcc wrote every file in it
/// (see [`Staging::begin`]).
pub fn write_dataset(cfg: &PhantomConfig, out: &Path, force: bool) -> Result<PhantomSummary> {
    if cfg.n == 0 {
        return Err(DataError::Config("phantom: --n must be at least 1".into()));
    }
    for (name, v) in [("width", cfg.width), ("height", cfg.height)] {
        if !(MIN_SIDE..=MAX_SIDE).contains(&v) {
            return Err(DataError::Config(format!(
                "phantom: {name} {v} is outside {MIN_SIDE}..={MAX_SIDE}"
            )));
        }
    }
    // Built beside `out` and moved into place when complete: a failure (full disk) or a kill
    // leaves `out` as it was.
    let staging = Staging::begin(out, force)?;
    let work = staging.path().to_path_buf();
    for dir in [images_dir(&work), masks_dir(&work)] {
        std::fs::create_dir_all(&dir)
            .map_err(|e| DataError::io(&dir, "cannot create folder", e))?;
    }
    let rows = (0..cfg.n)
        .into_par_iter()
        .map(|i| {
            let case = generate_one(cfg, i);
            let image = images_dir(&work).join(format!("{}.png", case.stem));
            write_png(&image, &case.image).map_err(|e| e.moved(&work, out))?;
            write_png(&mask_path(&work, &case.stem), &case.mask)
                .map_err(|e| e.moved(&work, out))?;
            Ok(ManifestRow {
                lesion_pixels: case.lesion_pixels() as u64,
                stem: case.stem,
                class: case.class.as_str().to_owned(),
                width: case.image.width(),
                height: case.image.height(),
                mask_files: 1,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    write_manifest(&work.join(MANIFEST_FILE), &rows).map_err(|e| e.moved(&work, out))?;
    let removed_stale =
        staging.dropped_files(&[PathBuf::from(IMAGES_DIR), PathBuf::from(MASKS_DIR)]);
    staging.commit()?;

    let benign = rows
        .iter()
        .filter(|r| r.class == PhantomClass::Benign.as_str())
        .count();
    let area = (cfg.width * cfg.height) as f64;
    let mean_lesion_fraction = rows
        .iter()
        .map(|r| r.lesion_pixels as f64 / area)
        .sum::<f64>()
        / rows.len() as f64;
    Ok(PhantomSummary {
        out: out.to_path_buf(),
        images: rows.len(),
        benign,
        malignant: rows.len() - benign,
        width: cfg.width,
        height: cfg.height,
        mean_lesion_fraction,
        removed_stale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::read_manifest;

    fn small(n: usize) -> PhantomConfig {
        PhantomConfig {
            n,
            width: 48,
            height: 40,
            seed: 4,
        }
    }

    #[test]
    fn writes_layout_and_manifest() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("ph");
        let s = write_dataset(&small(5), &out, false).unwrap();
        assert_eq!((s.images, s.benign, s.malignant), (5, 3, 2));
        let text = std::fs::read_to_string(out.join("manifest.csv")).unwrap();
        assert!(
            text.starts_with("stem,class,width,height,lesion_pixels,mask_files\n"),
            "{text}"
        );
        let rows = read_manifest(&out.join("manifest.csv")).unwrap();
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[0].stem, "phantom_0001");
        assert_eq!(rows[1].class, "malignant");
        for r in &rows {
            assert_eq!((r.width, r.height, r.mask_files), (48, 40, 1));
            let img = image::open(out.join("images").join(format!("{}.png", r.stem))).unwrap();
            assert_eq!(img.color(), image::ColorType::L8);
            let mask = image::open(out.join("masks/0").join(format!("{}.png", r.stem)))
                .unwrap()
                .to_luma8();
            let lesion = mask.as_raw().iter().filter(|&&v| v == 255).count() as u64;
            assert_eq!(lesion, r.lesion_pixels);
            assert!(mask.as_raw().iter().all(|&v| v == 0 || v == 255));
        }
        // parallel output equals generate_one
        let one = generate_one(&small(5), 2);
        let disk = image::open(out.join("images/phantom_0003.png"))
            .unwrap()
            .to_luma8();
        assert_eq!(disk.as_raw(), one.image.as_raw());
    }

    #[test]
    fn refuses_non_empty_output_without_force() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("notes.txt"), "keep me").unwrap();
        let err = write_dataset(&small(2), t.path(), false).unwrap_err();
        assert!(matches!(err, DataError::OutputExists { .. }), "{err}");
        assert!(!t.path().join("images").exists());
        // --force does not replace a folder holding a file mgcc did not write.
        let err = write_dataset(&small(2), t.path(), true).unwrap_err();
        assert!(matches!(err, DataError::NotWrittenByMgcc { .. }), "{err}");
        assert_eq!(
            std::fs::read_to_string(t.path().join("notes.txt")).unwrap(),
            "keep me"
        );
        // an existing empty folder is fine
        let empty = t.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        write_dataset(&small(2), &empty, false).unwrap();
    }

    #[test]
    fn force_overwrites_and_drops_stale_images() {
        let t = tempfile::tempdir().unwrap();
        write_dataset(&small(4), t.path(), false).unwrap();
        let s = write_dataset(&small(2), t.path(), true).unwrap();
        assert_eq!(s.removed_stale, 4);
        assert!(!t.path().join("images/phantom_0003.png").exists());
        assert!(!t.path().join("masks/0/phantom_0004.png").exists());
        assert_eq!(
            read_manifest(&t.path().join("manifest.csv")).unwrap().len(),
            2
        );
    }

    #[test]
    fn rejects_bad_config() {
        let t = tempfile::tempdir().unwrap();
        let zero = PhantomConfig { n: 0, ..small(1) };
        assert!(matches!(
            write_dataset(&zero, t.path(), false),
            Err(DataError::Config(_))
        ));
        let tiny = PhantomConfig {
            width: 8,
            ..small(1)
        };
        assert!(matches!(
            write_dataset(&tiny, t.path(), false),
            Err(DataError::Config(_))
        ));
    }
}
