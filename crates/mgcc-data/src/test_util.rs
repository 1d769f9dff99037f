//! Tiny fixture writers for tests.

use std::path::Path;

use image::{DynamicImage, GrayImage, Luma};

/// Save any image, creating parent folders (format from the extension).
pub fn write_dyn(path: &Path, img: &DynamicImage) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save(path).unwrap();
}

/// A uniform gray image.
pub fn write_gray(path: &Path, w: u32, h: u32, value: u8) {
    write_dyn(
        path,
        &DynamicImage::ImageLuma8(GrayImage::from_pixel(w, h, Luma([value]))),
    );
}

/// A 0/255 mask with the listed lesion pixels.
pub fn write_mask(path: &Path, w: u32, h: u32, lesion: &[(u32, u32)]) {
    let mut m = GrayImage::new(w, h);
    for &(x, y) in lesion {
        m.put_pixel(x, y, Luma([255]));
    }
    write_dyn(path, &DynamicImage::ImageLuma8(m));
}
