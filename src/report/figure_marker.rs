//! Draws one marker, in chart coordinates or in pixels (the legend), by its shape.

use plotters::coord::CoordTranslate;
use plotters::drawing::{DrawingArea, DrawingAreaErrorKind};
use plotters::element::{Circle, Cross, EmptyElement, Rectangle, TriangleMarker};
use plotters::prelude::DrawingBackend;
use plotters::style::Color;

use super::figure_style::{Look, Marker};

pub(crate) fn draw_marker<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    at: CT::From,
    look: &Look,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let color = look.color;
    match look.marker {
        Marker::Ring => area.draw(&Circle::new(at, 6, color.stroke_width(2))),
        Marker::Dot => area.draw(&Circle::new(at, 5, color.mix(0.85).filled())),
        Marker::Cross => area.draw(&Cross::new(at, 5, color.stroke_width(2))),
        Marker::Triangle => area.draw(&TriangleMarker::new(at, 6, color.mix(0.85).filled())),
        Marker::Square => {
            area.draw(&(EmptyElement::at(at) + Rectangle::new([(-4, -4), (4, 4)], color.mix(0.85).filled())))
        }
        Marker::HollowSquare => {
            area.draw(&(EmptyElement::at(at) + Rectangle::new([(-4, -4), (4, 4)], color.stroke_width(2))))
        }
    }
}
