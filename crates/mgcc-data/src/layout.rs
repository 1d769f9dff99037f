//! The on-disk dataset layout: `DIR/images/STEM.{png,jpg,jpeg,bmp}` with masks
//! `DIR/masks/0/STEM.png` (0 = background, anything else = lesion), optional `DIR/manifest.csv`.
//! Unlabelled folders are flat or have `images/`, and need no masks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::manifest::{self, ManifestRow};

/// Image extensions read, in order of preference when one stem has several.
pub const IMAGE_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "bmp"];
/// Name of the manifest file at the dataset root.
pub const MANIFEST_FILE: &str = "manifest.csv";

/// The images folder of a dataset, relative to its root.
pub const IMAGES_DIR: &str = "images";
/// The masks folder of a dataset, relative to its root.
pub const MASKS_DIR: &str = "masks/0";

/// `DIR/images`.
pub fn images_dir(root: &Path) -> PathBuf {
    root.join(IMAGES_DIR)
}

/// `DIR/masks/0`.
pub fn masks_dir(root: &Path) -> PathBuf {
    root.join("masks").join("0")
}

/// `DIR/masks/0/STEM.png`.
pub fn mask_path(root: &Path, stem: &str) -> PathBuf {
    masks_dir(root).join(format!("{stem}.png"))
}

/// Rank of `path`'s extension in [`IMAGE_EXTENSIONS`] (case-insensitive), `None` if not an image.
pub fn image_extension_rank(path: &Path) -> Option<usize> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    IMAGE_EXTENSIONS.iter().position(|e| *e == ext)
}

/// The file stem as UTF-8 (stems are written into split files, so they must be text).
pub fn stem_of(path: &Path) -> Result<String> {
    path.file_stem()
        .and_then(|s| s.to_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            DataError::io(
                path,
                "bad file name",
                std::io::Error::new(std::io::ErrorKind::InvalidData, "name is not valid UTF-8"),
            )
        })
}

/// Regular files directly in `dir` (not recursive), sorted by path.
pub fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(list_dir(dir)?.0)
}

/// An entry that cannot be followed, and why.
pub type BrokenEntry = (PathBuf, String);

/// Regular files directly in `dir` (symlinks followed), and the entries that cannot be followed
/// (dangling or looping symbolic links) with why; both sorted by path.
pub fn list_dir(dir: &Path) -> Result<(Vec<PathBuf>, Vec<BrokenEntry>)> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| DataError::io(dir, "cannot list folder", e))?;
    let mut files = Vec::new();
    let mut broken = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io(dir, "cannot list folder", e))?;
        let path = entry.path();
        // `metadata` follows symlinks, so linked files count as files.
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => files.push(path),
            Ok(_) => {}
            Err(e) => {
                let why = link_problem(&path).unwrap_or_else(|| plain_io(&e));
                broken.push((path, why));
            }
        }
    }
    files.sort();
    broken.sort();
    Ok((files, broken))
}

/// Why `path`, a symbolic link, cannot be followed (`None` when it is not a broken link).
pub fn link_problem(path: &Path) -> Option<String> {
    if !std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink()) {
        return None;
    }
    match std::fs::metadata(path) {
        Ok(_) => None,
        Err(e) if e.raw_os_error() == Some(40) => Some("symbolic link loops (ELOOP)".into()),
        Err(e) => Some(format!("broken symbolic link: {}", plain_io(&e))),
    }
}

/// Split a listing's unreadable entries: those named like images count as images (reading
/// them fails, naming the problem, where the image is read), the rest are returned.
fn keep_image_links(
    files: &mut Vec<PathBuf>,
    broken: Vec<(PathBuf, String)>,
) -> Vec<(PathBuf, String)> {
    let (images, rest): (Vec<_>, Vec<_>) = broken
        .into_iter()
        .partition(|(p, _)| image_extension_rank(p).is_some());
    files.extend(images.into_iter().map(|(p, _)| p));
    files.sort();
    rest
}

/// An I/O error's text without the repeated "(os error N)".
fn plain_io(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// One labelled sample: its stem, image file and mask file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub stem: String,
    pub image: PathBuf,
    pub mask: PathBuf,
}

/// What a dataset folder contains, before any judgement (shared by [`Dataset::open`] and `check`).
#[derive(Debug, Default)]
pub struct Scan {
    /// Image files per stem, best extension first.
    pub images: BTreeMap<String, Vec<PathBuf>>,
    /// Mask file per stem.
    pub masks: BTreeMap<String, PathBuf>,
    /// Files in `images/` without an image extension.
    pub other_images: Vec<PathBuf>,
    /// Files in `masks/0/` that are not `.png`.
    pub other_masks: Vec<PathBuf>,
    /// Entries of `images/` or `masks/0/` not named like images that cannot be followed
    /// (dangling or looping symbolic links), with why. Broken links named like images are
    /// listed as images (or masks): reading them fails with the reason.
    pub broken: Vec<(PathBuf, String)>,
    /// Whether `images/` and `masks/0/` exist.
    pub has_images_dir: bool,
    pub has_masks_dir: bool,
}

/// List `root/images` and `root/masks/0` without decoding anything.
pub fn scan(root: &Path) -> Result<Scan> {
    let mut out = Scan::default();
    let idir = images_dir(root);
    if idir.is_dir() {
        out.has_images_dir = true;
        let (mut files, broken) = list_dir(&idir)?;
        out.broken.extend(keep_image_links(&mut files, broken));
        for path in files {
            if image_extension_rank(&path).is_some() {
                out.images.entry(stem_of(&path)?).or_default().push(path);
            } else {
                out.other_images.push(path);
            }
        }
        for paths in out.images.values_mut() {
            paths.sort_by_key(|p| image_extension_rank(p));
        }
    }
    let mdir = masks_dir(root);
    if mdir.is_dir() {
        out.has_masks_dir = true;
        let (mut files, broken) = list_dir(&mdir)?;
        out.broken.extend(keep_image_links(&mut files, broken));
        for path in files {
            if image_extension_rank(&path) == Some(0) {
                out.masks.insert(stem_of(&path)?, path);
            } else {
                out.other_masks.push(path);
            }
        }
    }
    Ok(out)
}

/// A labelled dataset whose every image has a mask and every mask an image.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub root: PathBuf,
    /// Samples sorted by stem.
    pub samples: Vec<Sample>,
    /// Rows of `manifest.csv` when present.
    pub manifest: Option<Vec<ManifestRow>>,
}

impl Dataset {
    /// Open `root`, failing on the first missing folder, missing mask or orphan mask (run
    /// `mgcc check` for the full list). A stem with several image extensions uses the first of
    /// [`IMAGE_EXTENSIONS`]. Nothing is decoded.
    pub fn open(root: &Path) -> Result<Dataset> {
        let s = scan(root)?;
        if !s.has_images_dir {
            return Err(DataError::MissingFolder {
                path: images_dir(root),
                what: "a dataset needs images/STEM.{png,jpg,jpeg,bmp}".into(),
            });
        }
        if !s.has_masks_dir {
            return Err(DataError::MissingFolder {
                path: masks_dir(root),
                what: "a labelled dataset needs masks/0/STEM.png".into(),
            });
        }
        if s.images.is_empty() {
            return Err(DataError::EmptyFolder {
                path: images_dir(root),
                what: "no .png/.jpg/.jpeg/.bmp images".into(),
            });
        }
        let mut samples = Vec::with_capacity(s.images.len());
        for (stem, paths) in &s.images {
            let image = paths[0].clone();
            let Some(mask) = s.masks.get(stem) else {
                return Err(DataError::MissingMask {
                    image,
                    expected: mask_path(root, stem),
                });
            };
            samples.push(Sample {
                stem: stem.clone(),
                image,
                mask: mask.clone(),
            });
        }
        if let Some((stem, mask)) = s
            .masks
            .iter()
            .find(|(stem, _)| !s.images.contains_key(*stem))
        {
            return Err(DataError::OrphanMask {
                mask: mask.clone(),
                stem: stem.clone(),
                images_dir: images_dir(root),
            });
        }
        let mpath = root.join(MANIFEST_FILE);
        let manifest = if mpath.is_file() {
            Some(manifest::read_manifest(&mpath)?)
        } else {
            None
        };
        Ok(Dataset {
            root: root.to_path_buf(),
            samples,
            manifest,
        })
    }

    /// All stems, sorted.
    pub fn stems(&self) -> Vec<String> {
        self.samples.iter().map(|s| s.stem.clone()).collect()
    }

    /// The sample of `stem`.
    pub fn sample(&self, stem: &str) -> Option<&Sample> {
        self.samples
            .binary_search_by(|s| s.stem.as_str().cmp(stem))
            .ok()
            .map(|i| &self.samples[i])
    }

    /// The samples of `stems`, in that order (`Config` error naming the first unknown stem).
    pub fn select(&self, stems: &[String]) -> Result<Vec<Sample>> {
        stems
            .iter()
            .map(|stem| {
                self.sample(stem).cloned().ok_or_else(|| {
                    DataError::Config(format!("stem `{stem}` is not in {}", self.root.display()))
                })
            })
            .collect()
    }

    /// Class of `stem` from the manifest, if any.
    pub fn class_of(&self, stem: &str) -> Option<&str> {
        self.manifest
            .as_ref()?
            .iter()
            .find(|r| r.stem == stem)
            .map(|r| r.class.as_str())
    }
}

/// The images of an unlabelled folder and its unreadable entries.
#[derive(Debug, Default)]
pub struct Listing {
    /// Image files, sorted.
    pub images: Vec<PathBuf>,
    /// Dangling or looping links not named like images (ignored), with why. Broken links named
    /// like images are in `images`: reading them fails with the reason.
    pub broken: Vec<(PathBuf, String)>,
}

/// List an unlabelled folder: `dir/images/*` when `dir/images/` exists, else `dir/*` (flat);
/// masks are ignored. Error when the folder is missing or has no image at all.
pub fn unlabeled_listing(dir: &Path) -> Result<Listing> {
    if !dir.is_dir() {
        return Err(DataError::MissingFolder {
            path: dir.to_path_buf(),
            what: "image folder not found".into(),
        });
    }
    let idir = images_dir(dir);
    let folder = if idir.is_dir() {
        idir
    } else {
        dir.to_path_buf()
    };
    let (mut files, broken) = list_dir(&folder)?;
    let broken = keep_image_links(&mut files, broken);
    let images: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| image_extension_rank(p).is_some())
        .collect();
    if images.is_empty() {
        return Err(DataError::EmptyFolder {
            path: folder,
            what: "no .png/.jpg/.jpeg/.bmp images".into(),
        });
    }
    Ok(Listing { images, broken })
}

/// Image files of an unlabelled folder (see [`unlabeled_listing`]).
pub fn unlabeled_images(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(unlabeled_listing(dir)?.images)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{write_gray, write_mask};

    #[test]
    fn open_pairs_images_and_masks_with_odd_stems() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        write_gray(&images_dir(root).join("benign (10).png"), 4, 3, 7);
        write_mask(&mask_path(root, "benign (10)"), 4, 3, &[(1, 1)]);
        write_gray(&images_dir(root).join("a.bmp"), 4, 3, 7);
        write_gray(&images_dir(root).join("a.jpg"), 4, 3, 7);
        write_mask(&mask_path(root, "a"), 4, 3, &[]);
        let ds = Dataset::open(root).unwrap();
        assert_eq!(ds.stems(), vec!["a", "benign (10)"]);
        // jpg is preferred over bmp.
        assert!(ds.sample("a").unwrap().image.ends_with("a.jpg"));
        assert!(ds.sample("zzz").is_none());
    }

    #[test]
    fn open_reports_missing_and_orphan_masks() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        write_gray(&images_dir(root).join("x.png"), 4, 3, 7);
        write_mask(&mask_path(root, "y"), 4, 3, &[]);
        let err = Dataset::open(root).unwrap_err();
        assert!(matches!(err, DataError::MissingMask { .. }), "{err}");
        assert!(err.to_string().contains("x.png"));
        write_mask(&mask_path(root, "x"), 4, 3, &[]);
        let err = Dataset::open(root).unwrap_err();
        assert!(matches!(err, DataError::OrphanMask { .. }), "{err}");
        assert!(err.to_string().contains("y.png"));
    }

    #[test]
    fn unlabeled_flat_or_images_and_empty() {
        let t = tempfile::tempdir().unwrap();
        let flat = t.path().join("flat");
        write_gray(&flat.join("g1.png"), 2, 2, 1);
        std::fs::write(flat.join("notes.txt"), "x").unwrap();
        assert_eq!(unlabeled_images(&flat).unwrap(), vec![flat.join("g1.png")]);
        let nested = t.path().join("nested");
        write_gray(&images_dir(&nested).join("g2.jpeg"), 2, 2, 1);
        assert_eq!(unlabeled_images(&nested).unwrap().len(), 1);
        let empty = t.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let err = unlabeled_images(&empty).unwrap_err();
        assert!(matches!(err, DataError::EmptyFolder { .. }), "{err}");
    }
}
