//! Image grids for looking at samples: a square-ish grid of tiles, and side-by-side pairs.

use std::path::Path;

use image::imageops::{self, FilterType};
use image::{GrayImage, Luma};

use super::error::QualityError;

/// Width in pixels of the separator between tiles.
pub const SEPARATOR: u32 = 2;
/// Gray value of the separators (white).
pub const SEPARATOR_VALUE: u8 = 255;
/// Tile side used when the generated images differ in size or a side exceeds [`MAX_NATIVE_TILE`].
pub const DEFAULT_TILE: u32 = 128;
/// Largest side shown at native resolution.
pub const MAX_NATIVE_TILE: u32 = 256;

/// Tile size for a grid of images of the given sizes: their own size when all are the same
/// and neither side exceeds [`MAX_NATIVE_TILE`], else [`DEFAULT_TILE`]² (also for no images).
pub fn tile_size(dims: &[(u32, u32)]) -> (u32, u32) {
    match dims.first() {
        Some(&(w, h))
            if dims.iter().all(|&d| d == (w, h))
                && w.max(h) <= MAX_NATIVE_TILE
                && w > 0
                && h > 0 =>
        {
            (w, h)
        }
        _ => (DEFAULT_TILE, DEFAULT_TILE),
    }
}

/// Columns and rows of a square-ish grid for `k` tiles: `cols = ceil(√k)`, `rows = ceil(k/cols)`.
pub fn grid_layout(k: usize) -> (usize, usize) {
    if k == 0 {
        return (0, 0);
    }
    let mut cols = (k as f64).sqrt().floor() as usize;
    while cols * cols < k {
        cols += 1;
    }
    (cols, k.div_ceil(cols))
}

/// `k` indices evenly spread over `0..n` (`⌊i·n/k⌋`; all of `0..n` when `k ≥ n`).
pub fn evenly_spaced(n: usize, k: usize) -> Vec<usize> {
    if k >= n {
        return (0..n).collect();
    }
    (0..k).map(|i| i * n / k).collect()
}

/// Reads an image file as 8-bit gray and resizes it (Triangle filter) to `w`×`h` unless it
/// already has that size.
pub fn load_tile(path: &Path, w: u32, h: u32) -> Result<GrayImage, QualityError> {
    let img = mgcc_data::image_io::read_image(path)?.to_luma8();
    Ok(if img.dimensions() == (w, h) {
        img
    } else {
        imageops::resize(&img, w, h, FilterType::Triangle)
    })
}

/// Lays out equally sized tiles row by row in `cols` columns with [`SEPARATOR`]-pixel white
/// lines between them and around the border; empty cells stay black.
///
/// # Panics
/// When a tile is not `w`×`h` or `cols == 0` with tiles present.
pub fn compose_grid(tiles: &[GrayImage], cols: usize, w: u32, h: u32) -> GrayImage {
    let cols = cols.max(1);
    let rows = tiles.len().div_ceil(cols).max(1);
    let width = cols as u32 * (w + SEPARATOR) + SEPARATOR;
    let height = rows as u32 * (h + SEPARATOR) + SEPARATOR;
    let mut out = GrayImage::from_pixel(width, height, Luma([SEPARATOR_VALUE]));
    for r in 0..rows as u32 {
        for c in 0..cols as u32 {
            let x0 = SEPARATOR + c * (w + SEPARATOR);
            let y0 = SEPARATOR + r * (h + SEPARATOR);
            match tiles.get((r * cols as u32 + c) as usize) {
                Some(t) => {
                    assert_eq!(t.dimensions(), (w, h), "tile of the wrong size");
                    imageops::replace(&mut out, t, x0 as i64, y0 as i64);
                }
                None => {
                    for y in y0..y0 + h {
                        for x in x0..x0 + w {
                            out.put_pixel(x, y, Luma([0]));
                        }
                    }
                }
            }
        }
    }
    out
}

/// Encodes a gray image as PNG bytes; errors name `path` (where the bytes are meant to go).
pub fn encode_png(img: &GrayImage, path: &Path) -> Result<Vec<u8>, QualityError> {
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| QualityError::Encode {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_square_ish() {
        assert_eq!(grid_layout(0), (0, 0));
        assert_eq!(grid_layout(1), (1, 1));
        assert_eq!(grid_layout(5), (3, 2));
        assert_eq!(grid_layout(9), (3, 3));
        assert_eq!(grid_layout(10), (4, 3));
        assert_eq!(grid_layout(64), (8, 8));
    }

    #[test]
    fn tile_size_rules() {
        assert_eq!(tile_size(&[(64, 64), (64, 64)]), (64, 64));
        assert_eq!(tile_size(&[(64, 64), (32, 32)]), (128, 128));
        assert_eq!(tile_size(&[(512, 512)]), (128, 128));
        assert_eq!(tile_size(&[]), (128, 128));
    }

    #[test]
    fn evenly_spaced_indices() {
        assert_eq!(evenly_spaced(3, 5), vec![0, 1, 2]);
        assert_eq!(evenly_spaced(10, 4), vec![0, 2, 5, 7]);
    }

    #[test]
    fn grid_places_tiles_and_separators() {
        let tiles: Vec<GrayImage> = (0..3)
            .map(|i| GrayImage::from_pixel(4, 3, Luma([10 * (i + 1)])))
            .collect();
        let g = compose_grid(&tiles, 2, 4, 3);
        assert_eq!(g.dimensions(), (2 * 6 + 2, 2 * 5 + 2));
        assert_eq!(g.get_pixel(0, 0).0, [255]);
        assert_eq!(g.get_pixel(2, 2).0, [10]);
        assert_eq!(g.get_pixel(8, 2).0, [20]);
        assert_eq!(g.get_pixel(6, 2).0, [255]); // separator column
        assert_eq!(g.get_pixel(2, 7).0, [30]);
        assert_eq!(g.get_pixel(8, 7).0, [0]); // empty cell
    }
}
