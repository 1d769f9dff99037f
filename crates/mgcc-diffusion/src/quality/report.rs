//! The report itself: options, the summary written to `report.json`, and the files.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{ImageSet, QualityError};
use super::features::{FEATURE_DIM, FEATURE_SPACE, feature_space_description, image_features};
use super::grid::{compose_grid, encode_png, evenly_spaced, grid_layout, load_tile, tile_size};
use super::histogram::{pooled_distribution, total_variation, wasserstein1};
use super::load::{LoadedImage, load_images};
use super::nearest::{
    diversity, euclidean, leave_one_out_nearest, mean, median, nearest_neighbours, rmse,
};
use super::stats::{fid, kid};

/// Images used at most for each diversity estimate (a seeded subsample beyond that).
pub const DIVERSITY_MAX_IMAGES: usize = 500;
/// ChaCha8 stream of the report seed that subsamples generated images for diversity.
pub const DIVERSITY_GENERATED_STREAM: u64 = 1;
/// ChaCha8 stream of the report seed that subsamples real images for diversity.
pub const DIVERSITY_REAL_STREAM: u64 = 2;
/// Generated images shown next to their nearest real image in `nearest_pairs.png`.
pub const NEAREST_PAIRS: usize = 8;
/// Fewest images per set (leave-one-out, diversity, covariances and KID need two).
pub const MIN_IMAGES: usize = 2;

/// Output file names inside the report folder.
pub const GRID_FILE: &str = "grid.png";
pub const REAL_GRID_FILE: &str = "real_grid.png";
pub const NEAREST_CSV_FILE: &str = "nearest.csv";
pub const NEAREST_PAIRS_FILE: &str = "nearest_pairs.png";
pub const REPORT_FILE: &str = "report.json";

/// Note on FID/KID written into every report.
pub const FID_NOTE: &str = "FID and KID here are computed in the rcnn3-v1 feature space (a fixed \
random-weight CNN), not in Inception-v3 pool3 space (its weights are not available offline): \
they are NOT comparable with published FID/KID values, only between reports made by this tool \
with the same feature space and image size.";

/// Settings of [`quality_report`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportOptions {
    /// Images are compared as grayscale resized to `size`×`size` (default 64; 8 to 1024).
    pub size: u32,
    /// A generated image is a near-copy when its nearest-real pixel distance is below
    /// `near_copy_ratio × real_nn_median` (default 0.5).
    pub near_copy_ratio: f64,
    /// Feature vectors per side in each KID subset (default 100; clamped to the smaller set).
    pub kid_subset_size: usize,
    /// Number of KID subsets (default 50).
    pub kid_subsets: usize,
    /// Most generated images in `grid.png` (default 64).
    pub grid_max: usize,
    /// Seed of the KID subsets and diversity subsamples (default 0).
    pub seed: u64,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            size: 64,
            near_copy_ratio: 0.5,
            kid_subset_size: 100,
            kid_subsets: 50,
            grid_max: 64,
            seed: 0,
        }
    }
}

impl ReportOptions {
    /// Checks every option's range.
    pub fn validate(&self) -> Result<(), QualityError> {
        let bad = |name, detail: String| Err(QualityError::InvalidOption { name, detail });
        if !(8..=1024).contains(&self.size) {
            return bad("size", format!("{} is outside 8..=1024", self.size));
        }
        if !(self.near_copy_ratio.is_finite() && self.near_copy_ratio >= 0.0) {
            return bad(
                "near_copy_ratio",
                format!("{} is not a finite number >= 0", self.near_copy_ratio),
            );
        }
        if self.kid_subset_size < 2 {
            return bad(
                "kid_subset_size",
                format!("{} is below 2", self.kid_subset_size),
            );
        }
        if self.kid_subsets == 0 {
            return bad("kid_subsets", "must be at least 1".into());
        }
        if self.grid_max == 0 {
            return bad("grid_max", "must be at least 1".into());
        }
        Ok(())
    }
}

/// One generated image's nearest real images (a row of `nearest.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NearestRow {
    /// File name of the generated image.
    pub generated: String,
    /// File name of the real image nearest in pixel space.
    pub nearest_real_pixel: String,
    /// Its pixel distance (RMSE at `size`×`size`, gray in `[0,1]`).
    pub pixel_distance: f64,
    /// File name of the real image nearest in feature space.
    pub nearest_real_feature: String,
    /// Its feature distance (Euclidean in the feature space).
    pub feature_distance: f64,
    /// `pixel_distance < near_copy_threshold`.
    pub near_copy: bool,
    /// Index of the generated image in the `generated` list.
    pub generated_index: usize,
    /// Index of the pixel-nearest real image in the `real` list.
    pub real_pixel_index: usize,
    /// Index of the feature-nearest real image in the `real` list.
    pub real_feature_index: usize,
}

/// A generated image shown next to its nearest real image in `nearest_pairs.png`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NearestPair {
    /// File name of the generated image (left).
    pub generated: String,
    /// File name of its pixel-nearest real image (right).
    pub real: String,
    /// Their pixel distance (RMSE).
    pub pixel_distance: f64,
    /// Whether it counts as a near-copy.
    pub near_copy: bool,
}

/// Summary of a quality report, written pretty-printed to `report.json`.
///
/// Pixel distance = RMSE between two `size`×`size` gray images in `[0,1]`; feature distance =
/// Euclidean distance between `rcnn3-v1` feature vectors (see [`super::features`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    /// The feature extractor behind feature distances, KID and FID.
    pub feature_space: String,
    /// Feature dimension `d`.
    pub feature_dim: usize,
    /// FID/KID are not comparable with Inception-based published values.
    pub fid_note: String,
    /// Side of the gray images compared (pixels).
    pub size: u32,
    /// Seed of KID subsets and diversity subsamples.
    pub seed: u64,
    /// Number of generated images.
    pub n_generated: usize,
    /// Number of real images.
    pub n_real: usize,
    /// Median over real images of the leave-one-out nearest-real pixel distance.
    pub real_nn_median: f64,
    /// Median over real images of the leave-one-out nearest-real feature distance.
    pub real_nn_feature_median: f64,
    /// The near-copy ratio used.
    pub near_copy_ratio: f64,
    /// `near_copy_ratio × real_nn_median`.
    pub near_copy_threshold: f64,
    /// Generated images whose nearest-real pixel distance is `< near_copy_threshold`.
    pub near_copy_count: usize,
    /// `near_copy_count / n_generated`.
    pub near_copy_share: f64,
    /// Mean over generated images of the nearest-real pixel distance.
    pub gen_nn_pixel_mean: f64,
    /// Median over generated images of the nearest-real pixel distance.
    pub gen_nn_pixel_median: f64,
    /// Mean over generated images of the nearest-real feature distance.
    pub gen_nn_feature_mean: f64,
    /// Median over generated images of the nearest-real feature distance.
    pub gen_nn_feature_median: f64,
    /// Mean pixel distance over all pairs of generated images (subsample of ≤ 500).
    pub diversity_generated_rmse: f64,
    /// Generated images used for `diversity_generated_rmse`.
    pub diversity_generated_images: usize,
    /// Mean pixel distance over all pairs of real images (subsample of ≤ 500), for reference.
    pub diversity_real_rmse: f64,
    /// Real images used for `diversity_real_rmse`.
    pub diversity_real_images: usize,
    /// Wasserstein-1 distance between the pooled intensity histograms (gray-value units).
    pub histogram_w1: f64,
    /// Total-variation distance between the pooled normalised intensity histograms.
    pub histogram_tv: f64,
    /// Mean over subsets of the unbiased MMD² with kernel `(x·y/d + 1)³`.
    pub kid_mean: f64,
    /// Population std over subsets of that MMD².
    pub kid_std: f64,
    /// Feature vectors per side per KID subset (after clamping).
    pub kid_subset_size: usize,
    /// Number of KID subsets.
    pub kid_subsets: usize,
    /// Fréchet distance between Gaussians fitted to the two feature sets.
    pub fid: f64,
    /// The generated images closest to a real image, closest first, as in `nearest_pairs.png`.
    pub nearest_pairs: Vec<NearestPair>,
    /// Files written into the report folder.
    pub files: Vec<String>,
    /// One-line definition of each summary number, by field name.
    pub definitions: BTreeMap<String, String>,
    /// Every generated image's row of `nearest.csv` (not in `report.json`).
    #[serde(skip)]
    pub per_image: Vec<NearestRow>,
}

fn definitions() -> BTreeMap<String, String> {
    [
        ("pixel_distance", "RMSE between two size x size gray images in [0,1] (Triangle-filter resize)"),
        ("feature_distance", "Euclidean distance between rcnn3-v1 feature vectors"),
        ("real_nn_median", "median over real images of the pixel distance to the nearest other real image (leave-one-out)"),
        ("real_nn_feature_median", "median over real images of the feature distance to the nearest other real image (leave-one-out)"),
        ("near_copy", "generated image whose nearest-real pixel distance < near_copy_ratio * real_nn_median"),
        ("near_copy_share", "near_copy_count / n_generated"),
        ("gen_nn_pixel_mean", "mean over generated images of the nearest-real pixel distance (gen_nn_*_median: median; *_feature_*: feature distance)"),
        ("diversity_generated_rmse", "mean pixel distance over all unordered pairs of generated images (seeded subsample of at most 500); diversity_real_rmse: same for real images"),
        ("histogram_w1", "Wasserstein-1 distance between pooled intensity distributions: sum over 256 bins on [0,1] of |CDF_gen - CDF_real| * (1/256); pooled = mean of per-image normalised histograms at native resolution"),
        ("histogram_tv", "total-variation distance 0.5 * sum |p_gen - p_real| between the pooled normalised 256-bin histograms"),
        ("kid_mean", "unbiased MMD^2 with kernel (x.y/d + 1)^3 on rcnn3-v1 features, mean over kid_subsets random subsets of kid_subset_size per side (kid_std: population std)"),
        ("fid", "|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2) of rcnn3-v1 features (covariance with n-1); not Inception FID"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Writes `bytes` to `<path>.tmp` and renames it over `path`; removes the temporary file on
/// failure. Errors name `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), QualityError> {
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
        QualityError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// A CSV field, quoted (RFC 4180) when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The text of `nearest.csv`: a header and one row per generated image, in input order.
pub fn nearest_csv(rows: &[NearestRow]) -> String {
    let mut s = String::from(
        "generated,nearest_real_pixel,pixel_distance,nearest_real_feature,feature_distance,near_copy\n",
    );
    for r in rows {
        s.push_str(&format!(
            "{},{},{:.6},{},{:.6},{}\n",
            csv_field(&r.generated),
            csv_field(&r.nearest_real_pixel),
            r.pixel_distance,
            csv_field(&r.nearest_real_feature),
            r.feature_distance,
            r.near_copy
        ));
    }
    s
}

fn check_count(set: ImageSet, found: usize) -> Result<(), QualityError> {
    if found < MIN_IMAGES {
        return Err(QualityError::TooFewImages {
            set,
            found,
            needed: MIN_IMAGES,
        });
    }
    Ok(())
}

struct Split {
    pixels: Vec<Vec<f32>>,
    histograms: Vec<Vec<u64>>,
    dims: Vec<(u32, u32)>,
}

fn split(images: Vec<LoadedImage>) -> Split {
    let mut s = Split {
        pixels: Vec::with_capacity(images.len()),
        histograms: Vec::with_capacity(images.len()),
        dims: Vec::with_capacity(images.len()),
    };
    for im in images {
        s.pixels.push(im.pixels);
        s.histograms.push(im.histogram);
        s.dims.push((im.width, im.height));
    }
    s
}

/// Builds the quality report of `generated` images against `real` (training) images and
/// writes `grid.png`, `real_grid.png`, `nearest.csv`, `nearest_pairs.png` and `report.json`
/// into `out` (created if missing; each file written to a temporary name and renamed).
///
/// Both lists need at least 2 images. See [`QualityReport`] for every number's definition.
pub fn quality_report(
    generated: &[PathBuf],
    real: &[PathBuf],
    out: &Path,
    opts: &ReportOptions,
) -> Result<QualityReport, QualityError> {
    opts.validate()?;
    check_count(ImageSet::Generated, generated.len())?;
    check_count(ImageSet::Real, real.len())?;
    fs::create_dir_all(out).map_err(|source| QualityError::CreateDir {
        path: out.to_path_buf(),
        source,
    })?;
    let size = opts.size as usize;
    tracing::info!(
        generated = generated.len(),
        real = real.len(),
        size,
        "quality report: loading images"
    );
    let gen_set = split(load_images(generated, opts.size)?);
    let real_set = split(load_images(real, opts.size)?);

    // features
    let gen_feat = image_features(&gen_set.pixels, size);
    let real_feat = image_features(&real_set.pixels, size);

    // memorisation
    let nn_px = nearest_neighbours(&gen_set.pixels, &real_set.pixels, rmse);
    let nn_ft = nearest_neighbours(&gen_feat, &real_feat, euclidean);
    let loo_px: Vec<f64> = leave_one_out_nearest(&real_set.pixels, rmse)
        .iter()
        .map(|n| n.distance)
        .collect();
    let loo_ft: Vec<f64> = leave_one_out_nearest(&real_feat, euclidean)
        .iter()
        .map(|n| n.distance)
        .collect();
    let real_nn_median = median(&loo_px);
    let threshold = opts.near_copy_ratio * real_nn_median;
    let rows: Vec<NearestRow> = (0..generated.len())
        .map(|i| NearestRow {
            generated: file_name(&generated[i]),
            nearest_real_pixel: file_name(&real[nn_px[i].index]),
            pixel_distance: nn_px[i].distance,
            nearest_real_feature: file_name(&real[nn_ft[i].index]),
            feature_distance: nn_ft[i].distance,
            near_copy: nn_px[i].distance < threshold,
            generated_index: i,
            real_pixel_index: nn_px[i].index,
            real_feature_index: nn_ft[i].index,
        })
        .collect();
    let gen_px_d: Vec<f64> = nn_px.iter().map(|n| n.distance).collect();
    let gen_ft_d: Vec<f64> = nn_ft.iter().map(|n| n.distance).collect();
    let near_copy_count = rows.iter().filter(|r| r.near_copy).count();

    // diversity, histograms, KID, FID
    let div_gen = diversity(
        &gen_set.pixels,
        DIVERSITY_MAX_IMAGES,
        opts.seed,
        DIVERSITY_GENERATED_STREAM,
    );
    let div_real = diversity(
        &real_set.pixels,
        DIVERSITY_MAX_IMAGES,
        opts.seed,
        DIVERSITY_REAL_STREAM,
    );
    let p_gen = pooled_distribution(&gen_set.histograms);
    let p_real = pooled_distribution(&real_set.histograms);
    let kid_score = kid(
        &gen_feat,
        &real_feat,
        opts.kid_subset_size,
        opts.kid_subsets,
        opts.seed,
    );
    let fid_value = fid(&gen_feat, &real_feat);

    // pictures
    let grid_idx = evenly_spaced(generated.len(), opts.grid_max);
    let grid_dims: Vec<(u32, u32)> = grid_idx.iter().map(|&i| gen_set.dims[i]).collect();
    let (tw, th) = tile_size(&grid_dims);
    let tiles = |paths: Vec<&PathBuf>| -> Result<Vec<_>, QualityError> {
        use rayon::prelude::*;
        paths.par_iter().map(|p| load_tile(p, tw, th)).collect()
    };
    let (cols, _) = grid_layout(grid_idx.len());
    let gen_tiles = tiles(grid_idx.iter().map(|&i| &generated[i]).collect())?;
    let real_idx = evenly_spaced(real.len(), grid_idx.len());
    let real_tiles = tiles(real_idx.iter().map(|&i| &real[i]).collect())?;
    let mut by_distance: Vec<usize> = (0..generated.len()).collect();
    by_distance.sort_by(|&a, &b| gen_px_d[a].total_cmp(&gen_px_d[b]).then(a.cmp(&b)));
    by_distance.truncate(NEAREST_PAIRS);
    let pair_paths: Vec<&PathBuf> = by_distance
        .iter()
        .flat_map(|&i| [&generated[i], &real[nn_px[i].index]])
        .collect();
    let pair_tiles = tiles(pair_paths)?;
    let nearest_pairs = by_distance
        .iter()
        .map(|&i| NearestPair {
            generated: rows[i].generated.clone(),
            real: rows[i].nearest_real_pixel.clone(),
            pixel_distance: rows[i].pixel_distance,
            near_copy: rows[i].near_copy,
        })
        .collect();

    let report = QualityReport {
        feature_space: feature_space_description(),
        feature_dim: FEATURE_DIM,
        fid_note: FID_NOTE.to_string(),
        size: opts.size,
        seed: opts.seed,
        n_generated: generated.len(),
        n_real: real.len(),
        real_nn_median,
        real_nn_feature_median: median(&loo_ft),
        near_copy_ratio: opts.near_copy_ratio,
        near_copy_threshold: threshold,
        near_copy_count,
        near_copy_share: near_copy_count as f64 / generated.len() as f64,
        gen_nn_pixel_mean: mean(&gen_px_d),
        gen_nn_pixel_median: median(&gen_px_d),
        gen_nn_feature_mean: mean(&gen_ft_d),
        gen_nn_feature_median: median(&gen_ft_d),
        diversity_generated_rmse: div_gen.mean_pairwise_rmse,
        diversity_generated_images: div_gen.images_used,
        diversity_real_rmse: div_real.mean_pairwise_rmse,
        diversity_real_images: div_real.images_used,
        histogram_w1: wasserstein1(&p_gen, &p_real),
        histogram_tv: total_variation(&p_gen, &p_real),
        kid_mean: kid_score.mean,
        kid_std: kid_score.std,
        kid_subset_size: kid_score.subset_size,
        kid_subsets: kid_score.subsets,
        fid: fid_value,
        nearest_pairs,
        files: [
            GRID_FILE,
            REAL_GRID_FILE,
            NEAREST_CSV_FILE,
            NEAREST_PAIRS_FILE,
            REPORT_FILE,
        ]
        .map(String::from)
        .to_vec(),
        definitions: definitions(),
        per_image: rows,
    };

    // files; report.json last, so its presence means the folder is complete
    let write_png = |name: &str, img: &image::GrayImage| -> Result<(), QualityError> {
        let path = out.join(name);
        write_atomic(&path, &encode_png(img, &path)?)
    };
    write_png(GRID_FILE, &compose_grid(&gen_tiles, cols, tw, th))?;
    write_png(REAL_GRID_FILE, &compose_grid(&real_tiles, cols, tw, th))?;
    write_atomic(
        &out.join(NEAREST_CSV_FILE),
        nearest_csv(&report.per_image).as_bytes(),
    )?;
    write_png(NEAREST_PAIRS_FILE, &compose_grid(&pair_tiles, 2, tw, th))?;
    let json_path = out.join(REPORT_FILE);
    let mut json = serde_json::to_string_pretty(&report).map_err(|e| QualityError::Encode {
        path: json_path.clone(),
        detail: e.to_string(),
    })?;
    json.push('\n');
    write_atomic(&json_path, json.as_bytes())?;
    tracing::info!(
        near_copy_share = report.near_copy_share,
        kid = report.kid_mean,
        fid = report.fid,
        feature_space = FEATURE_SPACE,
        "quality report written to {}",
        out.display()
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn write_const(dir: &Path, name: &str, v: u8) -> PathBuf {
        let p = dir.join(name);
        GrayImage::from_pixel(16, 16, Luma([v])).save(&p).unwrap();
        p
    }

    fn write_noise(dir: &Path, name: &str, seed: u64) -> PathBuf {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let p = dir.join(name);
        GrayImage::from_fn(16, 16, |_, _| Luma([rng.random::<u8>()]))
            .save(&p)
            .unwrap();
        p
    }

    fn opts16() -> ReportOptions {
        ReportOptions {
            size: 16,
            kid_subsets: 5,
            ..ReportOptions::default()
        }
    }

    #[test]
    fn hand_computed_report_on_constant_images() {
        let t = tempfile::tempdir().unwrap();
        let real: Vec<PathBuf> = [0u8, 51, 102, 153, 204]
            .iter()
            .map(|&v| write_const(t.path(), &format!("r{v}.png"), v))
            .collect();
        let generated: Vec<PathBuf> = [51u8, 255, 25]
            .iter()
            .map(|&v| write_const(t.path(), &format!("g{v}.png"), v))
            .collect();
        let out = t.path().join("report/nested");
        let r = quality_report(&generated, &real, &out, &opts16()).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        // leave-one-out distances are all 0.2 → median 0.2, threshold 0.1
        assert!(close(r.real_nn_median, 0.2), "{}", r.real_nn_median);
        assert!(close(r.near_copy_threshold, 0.1));
        // g51: 0 (copy); g255: 0.2 to r204; g25: 25/255 ≈ 0.098 to r0 → 2 near-copies
        assert_eq!(r.near_copy_count, 2);
        assert!(close(r.near_copy_share, 2.0 / 3.0));
        let flags: Vec<bool> = r.per_image.iter().map(|x| x.near_copy).collect();
        assert_eq!(flags, vec![true, false, true]);
        let nn: Vec<&str> = r
            .per_image
            .iter()
            .map(|x| x.nearest_real_pixel.as_str())
            .collect();
        assert_eq!(nn, vec!["r51.png", "r204.png", "r0.png"]);
        assert!(close(r.gen_nn_pixel_mean, (0.2 + 25.0 / 255.0) / 3.0));
        assert!(close(r.gen_nn_pixel_median, 25.0 / 255.0));
        // diversity: generated pairs 204, 26, 230 (/255); real pairs of {0,.2,.4,.6,.8}: 0.4
        assert!(close(r.diversity_generated_rmse, 460.0 / 765.0));
        assert!(close(r.diversity_real_rmse, 0.4));
        assert_eq!(
            (r.diversity_generated_images, r.diversity_real_images),
            (3, 5)
        );
        // histograms (bins = 8-bit values): real 0.2 at 0,51,102,153,204; generated 1/3 at
        // 25,51,255. Σ|F−G| over bins = 25·0.2 + 26·2/15 + 51·(4/15 + 1/15 + 2/15 + 1/3)
        // = 739/15, so W1 = 739/(15·256); Σ|p−q| = 4·0.2 + 2·1/3 + 2/15 = 1.6, so TV = 0.8
        assert!(
            close(r.histogram_w1, 739.0 / (15.0 * 256.0)),
            "{}",
            r.histogram_w1
        );
        assert!(close(r.histogram_tv, 0.8), "{}", r.histogram_tv);
        assert_eq!(r.kid_subset_size, 3);
        assert!(r.fid.is_finite() && r.fid > 0.0);
        assert_eq!(r.nearest_pairs[0].generated, "g51.png");
        assert_eq!(r.nearest_pairs[0].real, "r51.png");
        assert_eq!(r.nearest_pairs.len(), 3);

        for f in &r.files {
            assert!(out.join(f).is_file(), "{f} missing");
        }
        let leftovers: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        let csv = std::fs::read_to_string(out.join(NEAREST_CSV_FILE)).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[0],
            "generated,nearest_real_pixel,pixel_distance,nearest_real_feature,feature_distance,near_copy"
        );
        assert!(
            lines[1].starts_with("g51.png,r51.png,0.000000,r51.png,0.000000,true"),
            "{}",
            lines[1]
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join(REPORT_FILE)).unwrap()).unwrap();
        assert!(
            json["feature_space"]
                .as_str()
                .unwrap()
                .starts_with("rcnn3-v1")
        );
        assert!(
            json["fid_note"]
                .as_str()
                .unwrap()
                .contains("NOT comparable")
        );
        assert!(json.get("per_image").is_none());
        assert_eq!(json["near_copy_count"], 2);
        // grids: 3 tiles of 16×16 in 2 columns; pairs: 3 rows of 2
        let grid = image::open(out.join(GRID_FILE)).unwrap();
        assert_eq!((grid.width(), grid.height()), (2 * 18 + 2, 2 * 18 + 2));
        let real_grid = image::open(out.join(REAL_GRID_FILE)).unwrap();
        assert_eq!(real_grid.width(), grid.width());
        let pairs = image::open(out.join(NEAREST_PAIRS_FILE))
            .unwrap()
            .to_luma8();
        assert_eq!(pairs.dimensions(), (2 * 18 + 2, 3 * 18 + 2));
        assert_eq!(pairs.get_pixel(5, 5).0, [51]);
        assert_eq!(pairs.get_pixel(23, 5).0, [51]);
    }

    #[test]
    fn copies_of_training_images_are_flagged_on_noise_images() {
        let t = tempfile::tempdir().unwrap();
        let real: Vec<PathBuf> = (0..12)
            .map(|i| write_noise(t.path(), &format!("real_{i:02}.png"), i))
            .collect();
        let mut generated: Vec<PathBuf> = (0..6)
            .map(|i| write_noise(t.path(), &format!("gen_{i:02}.png"), 100 + i))
            .collect();
        for k in [3usize, 7] {
            let p = t.path().join(format!("copy_of_{k}.png"));
            std::fs::copy(&real[k], &p).unwrap();
            generated.push(p);
        }
        let out = t.path().join("out");
        let r = quality_report(&generated, &real, &out, &opts16()).unwrap();
        assert_eq!(r.near_copy_count, 2);
        let copies: Vec<&NearestRow> = r.per_image.iter().filter(|x| x.near_copy).collect();
        assert_eq!(copies[0].real_pixel_index, 3);
        assert_eq!(copies[0].real_feature_index, 3);
        assert_eq!(copies[0].feature_distance, 0.0);
        assert_eq!(copies[1].nearest_real_pixel, "real_07.png");
        assert_eq!(r.nearest_pairs[0].pixel_distance, 0.0);
        assert!(r.real_nn_median > 0.2, "{}", r.real_nn_median);
        assert_eq!(r.feature_dim, 224);
        // same inputs, same report
        let again = quality_report(&generated, &real, &t.path().join("out2"), &opts16()).unwrap();
        assert_eq!(again, r);
        // reports of a set against itself: KID ~ 0, FID ~ 0, histogram distances 0
        let same = quality_report(&real, &real, &t.path().join("self"), &opts16()).unwrap();
        assert!(same.fid.abs() < 1e-6, "{}", same.fid);
        assert!(same.kid_std < 1e-12 && same.histogram_w1 == 0.0 && same.histogram_tv == 0.0);
        assert_eq!(same.near_copy_share, 1.0);
        assert!(r.fid > same.fid);
    }

    #[test]
    fn bad_input_gives_clear_errors() {
        let t = tempfile::tempdir().unwrap();
        let a = write_const(t.path(), "a.png", 10);
        let b = write_const(t.path(), "b.png", 20);
        let out = t.path().join("out");
        let err = quality_report(&[], &[a.clone(), b.clone()], &out, &opts16()).unwrap_err();
        assert!(
            matches!(
                err,
                QualityError::TooFewImages {
                    set: ImageSet::Generated,
                    found: 0,
                    ..
                }
            ),
            "{err}"
        );
        let err = quality_report(
            &[a.clone(), b.clone()],
            std::slice::from_ref(&a),
            &out,
            &opts16(),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("real images: found 1"), "{err}");
        let missing = t.path().join("missing.png");
        let err = quality_report(
            &[a.clone(), missing.clone()],
            &[a.clone(), b.clone()],
            &out,
            &opts16(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("missing.png"), "{err}");
        let bad = ReportOptions {
            size: 2,
            ..ReportOptions::default()
        };
        let err = quality_report(&[a.clone(), b.clone()], &[a.clone(), b.clone()], &out, &bad)
            .unwrap_err();
        assert!(err.to_string().contains("`size`"), "{err}");
        // output folder below a file cannot be created
        let err = quality_report(
            &[a.clone(), b.clone()],
            &[a.clone(), b.clone()],
            &a.join("x"),
            &opts16(),
        )
        .unwrap_err();
        assert!(matches!(err, QualityError::CreateDir { .. }), "{err}");
        assert!(err.to_string().contains("a.png"), "{err}");
    }

    #[test]
    fn csv_quotes_odd_names() {
        let row = NearestRow {
            generated: "a,b.png".into(),
            nearest_real_pixel: "q\"uote.png".into(),
            pixel_distance: 0.5,
            nearest_real_feature: "c.png".into(),
            feature_distance: 1.25,
            near_copy: false,
            generated_index: 0,
            real_pixel_index: 0,
            real_feature_index: 0,
        };
        let csv = nearest_csv(&[row]);
        assert_eq!(
            csv.lines().nth(1).unwrap(),
            "\"a,b.png\",\"q\"\"uote.png\",0.500000,c.png,1.250000,false"
        );
    }

    #[test]
    fn default_options_match_the_spec() {
        let o = ReportOptions::default();
        assert_eq!(
            (
                o.size,
                o.near_copy_ratio,
                o.kid_subset_size,
                o.kid_subsets,
                o.grid_max,
                o.seed
            ),
            (64, 0.5, 100, 50, 64, 0)
        );
        assert!(o.validate().is_ok());
    }
}
