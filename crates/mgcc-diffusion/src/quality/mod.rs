//! Quality report for generated images (`mgcc ldm report GENERATED --real DATA`).
//!
//! Compares a set of generated images with the real (training) images and writes into an
//! output folder:
//!
//! * `grid.png` — up to `grid_max` generated images (evenly spread over the list) in a
//!   square-ish grid with thin white separators, at their own resolution when they all share
//!   one of at most 256 px a side, else as 128×128 tiles; `real_grid.png` — as many real
//!   images, same tiles and layout, for side-by-side comparison;
//! * `nearest.csv` — per generated image: its nearest real image in pixel space and in feature
//!   space, both distances, and whether it is a near-copy;
//! * `nearest_pairs.png` — the 8 generated images closest to a real image (closest first), one
//!   per row, each next to that real image, to judge memorisation by eye;
//! * `report.json` — the [`QualityReport`], pretty-printed.
//!
//! Definitions (all images as gray in `[0,1]`, resized to `size`×`size` with the Triangle filter):
//!
//! * **pixel distance**: RMSE between two images ([`rmse`]);
//! * **feature distance**: Euclidean distance between `rcnn3-v1` features ([`features`]);
//! * **real-to-real baseline** `real_nn_median`: median over real images of the pixel distance
//!   to the nearest *other* real image (leave-one-out);
//! * **near-copy**: a generated image whose nearest-real pixel distance is
//!   `< near_copy_ratio × real_nn_median`; `near_copy_share = near_copy_count / n_generated`;
//! * **diversity**: mean pixel distance over all unordered pairs within a set (generated, and
//!   real for reference; seeded subsample of at most 500 images per set);
//! * **histogram distances** ([`histogram`]): per-image 256-bin histograms on `[0,1]` at native
//!   resolution, averaged per set; Wasserstein-1 = `Σ|CDF_gen − CDF_real| / 256`, total
//!   variation = `½ Σ|p_gen − p_real|`;
//! * **KID** ([`stats::kid`]): unbiased MMD² with `k(x,y) = (x·y/d + 1)³` over random subsets;
//! * **FID** ([`stats::fid`]): `‖μ₁−μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁^{½}Σ₂Σ₁^{½})^{½})` with
//!   covariances over `n − 1`, matrix square roots from a cyclic Jacobi eigensolver
//!   ([`eigen`]).
//!
//! FID and KID are computed in the `rcnn3-v1` random-CNN feature space, **not** with
//! Inception-v3 (whose weights cannot be downloaded here): they are not comparable with
//! published FID/KID numbers, only between reports of this tool with the same `size`.

pub mod eigen;
pub mod error;
pub mod features;
pub mod grid;
pub mod histogram;
pub mod load;
pub mod nearest;
pub mod report;
pub mod stats;

pub use error::{ImageSet, QualityError};
pub use features::{
    FEATURE_DIM, FEATURE_SPACE, RandomCnn, feature_space_description, image_features,
};
pub use load::{LoadedImage, load_gray, load_images};
pub use nearest::{euclidean, rmse};
pub use report::{NearestPair, NearestRow, QualityReport, ReportOptions, quality_report};
pub use stats::{KidScore, fid, kid};
