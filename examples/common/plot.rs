//! `metrics.svg`: loss (left) and accuracy (right) against epochs, the running training curve
//! as a line and the per-epoch test results as a line with dots, with labelled axes and round
//! ticks. Drawn by `plotters` as SVG: the text is the viewer's to render, so no font file or
//! system font is needed. Every plotted point is a row of `metrics.csv`.

use std::path::Path;

use plotters::prelude::*;

use super::CurvePoint;

const TRAIN: RGBColor = RGBColor(31, 119, 180);
const TEST: RGBColor = RGBColor(255, 127, 14);

/// Writes the two panels to `path`: `train` is the running curve, `test` one point per epoch,
/// each `(epochs done, loss, accuracy %)`.
pub fn write(path: &Path, train: &[CurvePoint], test: &[CurvePoint]) -> std::io::Result<()> {
    draw(path, train, test).map_err(|e| std::io::Error::other(e.to_string()))
}

fn draw(
    path: &Path,
    train: &[CurvePoint],
    test: &[CurvePoint],
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (960, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(480);
    let epochs = train.iter().chain(test).map(|p| p.0).fold(1.0, f64::max);
    let all = || train.iter().chain(test);
    let loss_hi = all().map(|p| f64::from(p.1)).fold(0.0, f64::max).max(1e-3) * 1.05;
    let acc_lo = all()
        .map(|p| f64::from(p.2))
        .fold(100.0, f64::min)
        .min(99.0);
    let acc_lo = (acc_lo / 5.0).floor() * 5.0; // a round lower bound
    panel(
        &left,
        "loss",
        "mean cross entropy",
        epochs,
        0.0..loss_hi,
        train,
        test,
        |p| f64::from(p.1),
    )?;
    panel(
        &right,
        "accuracy",
        "accuracy (%)",
        epochs,
        acc_lo..100.0,
        train,
        test,
        |p| f64::from(p.2),
    )?;
    root.present()?;
    Ok(())
}

/// One panel: `train` as a line, `test` as a line with dots, the value `y` of each point.
#[allow(clippy::too_many_arguments)]
fn panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    epochs: f64,
    y_range: std::ops::Range<f64>,
    train: &[CurvePoint],
    test: &[CurvePoint],
    y: impl Fn(&CurvePoint) -> f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..epochs, y_range)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_label)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    chart
        .draw_series(LineSeries::new(train.iter().map(|p| (p.0, y(p))), &TRAIN))?
        .label("train (running)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], TRAIN));
    chart
        .draw_series(LineSeries::new(test.iter().map(|p| (p.0, y(p))), &TEST))?
        .label("test")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], TEST));
    chart.draw_series(
        test.iter()
            .map(|p| Circle::new((p.0, y(p)), 4, TEST.filled())),
    )?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}
