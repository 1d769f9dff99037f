//! Writing gray planes in `[−1, 1]` as 8-bit PNGs: single images and grids.

use std::path::Path;

use image::GrayImage;

use crate::error::LdmError;

/// `[−1, 1]` → 0..=255 (clipped, rounded).
pub fn to_u8(v: f32) -> u8 {
    ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
}

/// One `size×size` plane as an 8-bit gray image.
pub fn plane_image(plane: &[f32], size: usize) -> GrayImage {
    GrayImage::from_fn(size as u32, size as u32, |x, y| {
        image::Luma([to_u8(plane[y as usize * size + x as usize])])
    })
}

/// Write a PNG through a temporary name (`NAME.png.partial`, which no image lister picks up)
/// and a rename, so an interrupted write never leaves a truncated image.
pub fn save_png(path: &Path, img: &GrayImage) -> Result<(), LdmError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = std::path::PathBuf::from(tmp);
    img.save_with_format(&tmp, image::ImageFormat::Png)
        .map_err(|e| LdmError::Image {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    std::fs::rename(&tmp, path).map_err(|e| LdmError::io(path, e))
}

/// A grid whose row `r` holds the planes of `rows[r]`, with 2-px white separators.
pub fn write_rows(path: &Path, rows: &[Vec<Vec<f32>>], size: usize) -> Result<(), LdmError> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let gap = 2;
    let w = cols * size + (cols - 1) * gap;
    let h = rows.len().max(1) * size + rows.len().saturating_sub(1) * gap;
    let mut img = GrayImage::from_pixel(w as u32, h as u32, image::Luma([255]));
    for (r, row) in rows.iter().enumerate() {
        for (c, plane) in row.iter().enumerate() {
            let tile = plane_image(plane, size);
            image::imageops::replace(
                &mut img,
                &tile,
                (c * (size + gap)) as i64,
                (r * (size + gap)) as i64,
            );
        }
    }
    save_png(path, &img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_clips_and_rounds() {
        assert_eq!(to_u8(-1.0), 0);
        assert_eq!(to_u8(1.0), 255);
        assert_eq!(to_u8(3.0), 255);
        assert_eq!(to_u8(0.0), 128);
    }

    #[test]
    fn grid_has_rows_columns_and_separators() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.png");
        let black = vec![-1.0f32; 4];
        write_rows(&p, &[vec![black.clone(), black.clone()], vec![black]], 2).unwrap();
        let img = image::open(&p).unwrap().to_luma8();
        assert_eq!(img.dimensions(), (6, 6));
        assert_eq!(img.get_pixel(0, 0)[0], 0);
        assert_eq!(img.get_pixel(2, 0)[0], 255);
        assert_eq!(img.get_pixel(4, 4)[0], 255); // missing tile stays white
    }
}
