//! How each column looks in the figure, after the paper's Figure 2: blue selffers,
//! red transfers, lighter shades when fine-tuned, gray random filters. Every column has
//! its own marker too (selffers dots and crosses, transfers filled and open squares), so
//! the figure still reads when printed in grey, where the blue and the red look alike.

use plotters::style::RGBColor;

use super::column::Column;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Marker {
    /// Hollow circle: base networks, drawn at n = 0.
    Ring,
    Dot,
    Cross,
    Triangle,
    Square,
    HollowSquare,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Look {
    pub color: RGBColor,
    pub marker: Marker,
    /// Horizontal offset of the run markers, so that columns at the same n do not
    /// hide each other; means are drawn at the exact n.
    pub jitter: f64,
    pub legend: &'static str,
}

pub(crate) fn look(column: Column) -> Look {
    let (color, marker, jitter, legend) = match column {
        Column::Base => (RGBColor(30, 30, 30), Marker::Ring, 0.0, "base (dashed: mean)"),
        Column::Selffer => (RGBColor(31, 87, 200), Marker::Dot, -0.18, "BnB selffer"),
        Column::SelfferTuned => (RGBColor(0, 175, 215), Marker::Cross, -0.06, "BnB+ selffer, fine-tuned"),
        Column::Transfer => (RGBColor(210, 30, 40), Marker::Square, 0.06, "AnB transfer"),
        Column::TransferTuned => (RGBColor(245, 130, 30), Marker::HollowSquare, 0.18, "AnB+ transfer, fine-tuned"),
        Column::Random | Column::Other => (RGBColor(120, 120, 120), Marker::Triangle, 0.0, "random filters, frozen"),
    };
    Look { color, marker, jitter, legend }
}
