//! Pictures for the examples: 28×28 maps (digits, saliency, perturbations) as colour tiles,
//! laid out in a grid and written as one PNG with the `image` crate.

#![allow(dead_code)] // each example uses part of it

use std::path::Path;

use ferrograd::{Error, Result};
use image::{Rgb, RgbImage};

/// Pixels per map pixel in the written picture.
const ZOOM: u32 = 4;
/// Blank pixels between tiles.
const GAP: u32 = 4;

/// A `side × side` map drawn in colour.
pub type Tile = Vec<[u8; 3]>;

/// Gray: 0 black, 1 white (values outside [0, 1] are clamped).
pub fn gray(values: &[f32]) -> Tile {
    values
        .iter()
        .map(|&v| {
            let g = (v.clamp(0.0, 1.0) * 255.0) as u8;
            [g, g, g]
        })
        .collect()
}

/// A heat map of non-negative values scaled by their maximum: black, red, yellow, white.
pub fn heat(values: &[f32]) -> Tile {
    let top = values.iter().cloned().fold(0.0f32, f32::max).max(1e-12);
    values.iter().map(|&v| hot(v / top)).collect()
}

/// The "hot" colour map at `t` in [0, 1].
fn hot(t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0) * 3.0;
    let c = |x: f32| (x.clamp(0.0, 1.0) * 255.0) as u8;
    [c(t), c(t - 1.0), c(t - 2.0)]
}

/// Signed values, red for positive and blue for negative, white at 0, scaled by `scale`.
pub fn signed(values: &[f32], scale: f32) -> Tile {
    values
        .iter()
        .map(|&v| {
            let t = (v / scale.max(1e-12)).clamp(-1.0, 1.0);
            let fade = |x: f32| (255.0 * (1.0 - x.abs())) as u8;
            if t >= 0.0 {
                [255, fade(t), fade(t)]
            } else {
                [fade(t), fade(t), 255]
            }
        })
        .collect()
}

/// The heat map of `map` over the gray image `image`, half and half.
pub fn overlay(image: &[f32], map: &[f32]) -> Tile {
    gray(image)
        .iter()
        .zip(heat(map))
        .map(|(g, h)| [0, 1, 2].map(|k| ((u16::from(g[k]) + u16::from(h[k])) / 2) as u8))
        .collect()
}

/// Writes `rows` of square tiles (each `side × side`) as one PNG, zoomed, with gaps.
pub fn write_grid(path: &Path, rows: &[Vec<Tile>], side: usize) -> Result<()> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0) as u32;
    let cell = side as u32 * ZOOM + GAP;
    let (w, h) = (cols * cell + GAP, rows.len() as u32 * cell + GAP);
    let mut img = RgbImage::from_pixel(w.max(1), h.max(1), Rgb([255, 255, 255]));
    for (r, row) in rows.iter().enumerate() {
        for (c, tile) in row.iter().enumerate() {
            let (x0, y0) = (GAP + c as u32 * cell, GAP + r as u32 * cell);
            for (i, px) in tile.iter().enumerate().take(side * side) {
                let (x, y) = ((i % side) as u32 * ZOOM, (i / side) as u32 * ZOOM);
                for dy in 0..ZOOM {
                    for dx in 0..ZOOM {
                        img.put_pixel(x0 + x + dx, y0 + y + dy, Rgb(*px));
                    }
                }
            }
        }
    }
    let file_err = |msg: String| Error::File {
        op: "write_grid",
        path: path.display().to_string(),
        msg,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| file_err(e.to_string()))?;
    }
    img.save(path).map_err(|e| file_err(e.to_string()))
}
