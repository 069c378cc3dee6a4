//! `metrics.png`: loss (left) and accuracy (right) against epochs, the training curve as a line
//! and the per-epoch test results as a line with dots. Drawn into an RGB buffer with a 3×5 pixel
//! font, written with the `png` crate: no plotting library, no system fonts.

use std::io::{self, BufWriter};
use std::path::Path;

use super::CurvePoint;

const W: usize = 960;
const H: usize = 400;
const SCALE: usize = 2; // font pixels per glyph pixel
const TRAIN: [u8; 3] = [31, 119, 180];
const TEST: [u8; 3] = [255, 127, 14];
const INK: [u8; 3] = [40, 40, 40];
const GRID: [u8; 3] = [225, 225, 225];

/// 3×5 glyphs, rows top to bottom.
const FONT: &[(char, &str)] = &[
    ('0', "111101101101111"),
    ('1', "010110010010111"),
    ('2', "111001111100111"),
    ('3', "111001111001111"),
    ('4', "101101111001001"),
    ('5', "111100111001111"),
    ('6', "111100111101111"),
    ('7', "111001001010010"),
    ('8', "111101111101111"),
    ('9', "111101111001111"),
    ('.', "000000000000010"),
    ('%', "101001010100101"),
    ('-', "000000111000000"),
    ('A', "010101111101101"),
    ('C', "011100100100011"),
    ('E', "111100110100111"),
    ('H', "101101111101101"),
    ('I', "111010010010111"),
    ('L', "100100100100111"),
    ('N', "101111111101101"),
    ('O', "010101101101010"),
    ('P', "110101110100100"),
    ('R', "110101110101101"),
    ('S', "011100010001110"),
    ('T', "111010010010010"),
    ('U', "101101101101111"),
    ('Y', "101101010010010"),
];

struct Canvas {
    px: Vec<u8>,
}

impl Canvas {
    fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if (0..W as i64).contains(&x) && (0..H as i64).contains(&y) {
            let i = 3 * (y as usize * W + x as usize);
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    fn rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: [u8; 3]) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.set(xx, yy, c);
            }
        }
    }

    /// A 2-pixel-wide line (Bresenham).
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: [u8; 3]) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.rect(x, y, 2, 2, c);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Text with its top-left corner at (x, y), upper-cased; unknown characters are blank.
    fn text(&mut self, x: i64, y: i64, text: &str, c: [u8; 3]) {
        let s = SCALE as i64;
        for (k, ch) in text.to_uppercase().chars().enumerate() {
            let Some((_, bits)) = FONT.iter().find(|(g, _)| *g == ch) else {
                continue;
            };
            for (b, bit) in bits.bytes().enumerate() {
                if bit == b'1' {
                    let (gx, gy) = ((b % 3) as i64, (b / 3) as i64);
                    self.rect(x + (k as i64 * 4 + gx) * s, y + gy * s, s, s, c);
                }
            }
        }
    }
}

/// Text width in pixels.
fn width(text: &str) -> i64 {
    (text.chars().count() as i64 * 4 - 1) * SCALE as i64
}

/// One panel: `train` as a line, `test` as a line with dots, y from `lo` to `hi`.
struct Panel {
    x: i64,
    y: i64,
    w: i64,
    h: i64,
    epochs: f64,
    lo: f64,
    hi: f64,
}

impl Panel {
    fn at(&self, e: f64, v: f64) -> (i64, i64) {
        let fx = e / self.epochs;
        let fy = ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0);
        (
            self.x + (fx * self.w as f64).round() as i64,
            self.y + self.h - (fy * self.h as f64).round() as i64,
        )
    }

    fn draw(&self, c: &mut Canvas, title: &str, train: &[(f64, f64)], test: &[(f64, f64)]) {
        c.text(
            self.x + (self.w - width(title)) / 2,
            self.y - 24,
            title,
            INK,
        );
        // Five horizontal grid lines with their values.
        for k in 0..=4 {
            let v = self.lo + (self.hi - self.lo) * k as f64 / 4.0;
            let (_, y) = self.at(0.0, v);
            c.rect(self.x, y, self.w, 1, GRID);
            let label = if self.hi - self.lo < 0.5 {
                format!("{v:.3}")
            } else {
                format!("{v:.2}")
            };
            c.text(self.x - width(&label) - 8, y - 5, &label, INK);
        }
        // Epoch ticks (at most ~10 labels).
        let step = (self.epochs / 10.0).ceil().max(1.0) as usize;
        for e in (0..=self.epochs as usize).step_by(step) {
            let (x, _) = self.at(e as f64, self.lo);
            c.rect(x, self.y + self.h, 1, 6, INK);
            let label = e.to_string();
            c.text(x - width(&label) / 2, self.y + self.h + 10, &label, INK);
        }
        c.text(
            self.x + (self.w - width("EPOCH")) / 2,
            self.y + self.h + 28,
            "EPOCH",
            INK,
        );
        // Axes.
        c.rect(self.x, self.y, 1, self.h + 1, INK);
        c.rect(self.x, self.y + self.h, self.w + 1, 1, INK);
        for (series, colour) in [(train, TRAIN), (test, TEST)] {
            let pts: Vec<_> = series.iter().map(|&(e, v)| self.at(e, v)).collect();
            for pair in pts.windows(2) {
                c.line(pair[0], pair[1], colour);
            }
            if colour == TEST {
                for &(x, y) in &pts {
                    c.rect(x - 3, y - 3, 7, 7, colour);
                }
            }
        }
    }
}

/// `(lo, hi)` around `values` with a little margin; accuracy is capped at 100.
fn range(values: impl Iterator<Item = f64>, floor_zero: bool, cap: Option<f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let lo = if floor_zero { 0.0 } else { lo - pad };
    let hi = cap.map_or(hi + pad, |c| (hi + pad).min(c));
    (lo, if hi > lo { hi } else { lo + 1.0 })
}

/// Writes the plot: `curve` holds the training points (epochs done, loss, accuracy), `tests`
/// the test result after each epoch.
pub fn write(path: &Path, curve: &[CurvePoint], tests: &[CurvePoint]) -> io::Result<()> {
    let mut c = Canvas {
        px: vec![255; W * H * 3],
    };
    let epochs = curve
        .iter()
        .chain(tests)
        .map(|p| p.0)
        .fold(1.0, f64::max)
        .ceil();
    let series = |pts: &[CurvePoint], loss: bool| -> Vec<(f64, f64)> {
        pts.iter()
            .map(|&(e, l, a)| (e, f64::from(if loss { l } else { a })))
            .collect()
    };
    let (lo, hi) = range(
        curve.iter().chain(tests).map(|p| f64::from(p.1)),
        true,
        None,
    );
    let left = Panel {
        x: 80,
        y: 50,
        w: 340,
        h: 280,
        epochs,
        lo,
        hi,
    };
    left.draw(&mut c, "LOSS", &series(curve, true), &series(tests, true));
    let (lo, hi) = range(
        curve.iter().chain(tests).map(|p| f64::from(p.2)),
        false,
        Some(100.0),
    );
    let right = Panel {
        x: 80 + 480,
        lo,
        hi,
        ..left
    };
    right.draw(
        &mut c,
        "ACCURACY %",
        &series(curve, false),
        &series(tests, false),
    );
    // Legend, top right.
    for (k, (name, colour)) in [("TRAIN", TRAIN), ("TEST", TEST)].into_iter().enumerate() {
        let x = W as i64 - 200 + k as i64 * 100;
        c.rect(x, 12, 14, 10, colour);
        c.text(x + 20, 12, name, INK);
    }
    let file = std::fs::File::create(path)?;
    let mut enc = png::Encoder::new(BufWriter::new(file), W as u32, H as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(io::Error::other)?;
    writer.write_image_data(&c.px).map_err(io::Error::other)?;
    writer.finish().map_err(io::Error::other)
}
