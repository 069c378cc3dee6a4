//! An image of a handwritten digit, of any format and size, prepared as MNIST's were: gray,
//! light on dark, the digit scaled to fit a 20×20 box (keeping its aspect ratio) and placed in
//! a 28×28 frame so that its centre of mass is the frame's centre (LeCun et al.'s description
//! of the dataset). `mnist_predict` reads images through it; `tests/mnist.rs` checks it.

use std::path::Path;

use ferrograd::{Error, Result};
use image::imageops::FilterType;
use image::{GrayImage, Luma};

/// Pixels brighter than this (of 255, after inverting to light on dark) are ink when the
/// digit's bounding box is found; fainter ones are paper noise.
const INK: u8 = 48;

/// The prepared 28×28 image, row-major, light (255) on dark (0).
pub fn read_digit(path: &Path) -> Result<Vec<u8>> {
    let file_err = |msg: String| Error::File {
        op: "mnist_predict",
        path: path.display().to_string(),
        msg,
    };
    let image = image::ImageReader::open(path)
        .map_err(|e| file_err(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| file_err(e.to_string()))?
        .decode()
        .map_err(|e| file_err(format!("not a readable image: {e}")))?;
    prepare(&flatten_on_white(&image)).map_err(file_err)
}

/// Gray, with transparent pixels on white paper (a drawing app's transparent background is
/// paper, not ink).
fn flatten_on_white(image: &image::DynamicImage) -> GrayImage {
    let la = image.to_luma_alpha8();
    GrayImage::from_fn(la.width(), la.height(), |x, y| {
        let [g, a] = la.get_pixel(x, y).0;
        let (g, a) = (u32::from(g), u32::from(a));
        Luma([((g * a + 255 * (255 - a)) / 255) as u8])
    })
}

/// MNIST's preparation of a gray image (see the module docs).
pub fn prepare(gray: &GrayImage) -> std::result::Result<Vec<u8>, String> {
    let (w, h) = gray.dimensions();
    if w == 0 || h == 0 {
        return Err("the image is empty".into());
    }
    // Light on dark: a drawing on white paper is inverted (judged by the border's mean).
    let border: Vec<u32> = gray
        .enumerate_pixels()
        .filter(|(x, y, _)| *x == 0 || *y == 0 || *x == w - 1 || *y == h - 1)
        .map(|(_, _, p)| u32::from(p.0[0]))
        .collect();
    let invert = border.iter().sum::<u32>() / border.len() as u32 > 127;
    let ink = GrayImage::from_fn(w, h, |x, y| {
        let v = gray.get_pixel(x, y).0[0];
        Luma([if invert { 255 - v } else { v }])
    });
    // The digit's bounding box.
    let inked: Vec<(u32, u32)> = ink
        .enumerate_pixels()
        .filter(|(_, _, p)| p.0[0] > INK)
        .map(|(x, y, _)| (x, y))
        .collect();
    let (Some(x0), Some(x1)) = (
        inked.iter().map(|p| p.0).min(),
        inked.iter().map(|p| p.0).max(),
    ) else {
        return Err("the image holds no digit (no pixel stands out from the background)".into());
    };
    let y0 = inked.iter().map(|p| p.1).min().unwrap_or(0);
    let y1 = inked.iter().map(|p| p.1).max().unwrap_or(0);
    let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
    let crop = image::imageops::crop_imm(&ink, x0, y0, bw, bh).to_image();
    // The longer side becomes 20 pixels.
    let scale = 20.0 / bw.max(bh) as f32;
    let (sw, sh) = (
        ((bw as f32 * scale).round() as u32).clamp(1, 20),
        ((bh as f32 * scale).round() as u32).clamp(1, 20),
    );
    let small = image::imageops::resize(&crop, sw, sh, FilterType::Triangle);
    // Shift so the centre of mass (by pixel index) lands on (14, 14), as in MNIST (its test
    // digits average 14.0 and 14.0), staying inside the frame.
    let (mut mass, mut mx, mut my) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y, p) in small.enumerate_pixels() {
        let v = f64::from(p.0[0]);
        mass += v;
        mx += v * f64::from(x);
        my += v * f64::from(y);
    }
    let (cx, cy) = if mass > 0.0 {
        (mx / mass, my / mass)
    } else {
        (f64::from(sw - 1) / 2.0, f64::from(sh - 1) / 2.0)
    };
    let left = ((14.0 - cx).round() as i64).clamp(0, i64::from(28 - sw));
    let top = ((14.0 - cy).round() as i64).clamp(0, i64::from(28 - sh));
    let mut frame = GrayImage::new(28, 28);
    image::imageops::overlay(&mut frame, &small, left, top);
    Ok(frame.into_raw())
}
