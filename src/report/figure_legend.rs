//! The figure's legend: a strip below the panels, so that it never covers data.

use plotters::coord::Shift;
use plotters::drawing::{DrawingArea, DrawingAreaErrorKind};
use plotters::element::{PathElement, Text};
use plotters::prelude::DrawingBackend;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color, RGBColor};

use super::column::Column;
use super::figure_marker::draw_marker;
use super::figure_style::look;
use super::font;

const TEXT: u32 = 20;
const SAMPLE: i32 = 40;
const GAP: i32 = 36;
const ROW: i32 = 32;
const NOTE: &str = "markers: single runs; lines: means over runs";

/// Legend entries, wrapped into centred rows that fit the width.
pub(crate) struct Legend {
    rows: Vec<Vec<(Option<Column>, i32)>>,
}

impl Legend {
    /// Lays the entries for `columns` out across `area`'s width.
    pub fn layout<DB: DrawingBackend>(
        area: &DrawingArea<DB, Shift>,
        columns: &[Column],
    ) -> Result<Legend, DrawingAreaErrorKind<DB::ErrorType>> {
        let width = area.dim_in_pixel().0 as i32 - 40;
        let mut rows: Vec<Vec<(Option<Column>, i32)>> = vec![Vec::new()];
        let mut used = 0;
        let entries = columns.iter().map(|c| Some(*c)).chain([None]);
        for entry in entries {
            let label = entry.map_or(NOTE, |c| look(c).legend);
            let text = area.estimate_text_size(label, &font::text(TEXT))?.0 as i32;
            let w = if entry.is_some() { SAMPLE + 8 + text } else { text };
            if used > 0 && used + GAP + w > width {
                rows.push(Vec::new());
                used = 0;
            }
            used += if used > 0 { GAP } else { 0 } + w;
            rows.last_mut().expect("one row at least").push((entry, w));
        }
        Ok(Legend { rows })
    }

    pub fn height(&self) -> u32 {
        (self.rows.len() as i32 * ROW + 16) as u32
    }

    pub fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let width = area.dim_in_pixel().0 as i32;
        let style = font::text(TEXT).pos(Pos::new(HPos::Left, VPos::Center));
        for (i, row) in self.rows.iter().enumerate() {
            let row_width: i32 = row.iter().map(|(_, w)| w).sum::<i32>() + GAP * (row.len() as i32 - 1);
            let mut x = (width - row_width) / 2;
            let y = ROW / 2 + 4 + i as i32 * ROW;
            for &(entry, w) in row {
                match entry {
                    Some(column) => {
                        let look = look(column);
                        let line = PathElement::new(vec![(x, y), (x + SAMPLE, y)], look.color.stroke_width(3));
                        if column == Column::Base {
                            for dash in 0..3 {
                                let x0 = x + dash * 15;
                                area.draw(&PathElement::new(vec![(x0, y), (x0 + 10, y)], look.color.stroke_width(2)))?;
                            }
                        } else {
                            area.draw(&line)?;
                        }
                        draw_marker(area, (x + SAMPLE / 2, y), &look)?;
                        area.draw(&Text::new(look.legend, (x + SAMPLE + 8, y), style.clone()))?;
                    }
                    None => {
                        let gray = RGBColor(90, 90, 90);
                        area.draw(&Text::new(NOTE, (x, y), style.color(&gray)))?;
                    }
                }
                x += w + GAP;
            }
        }
        Ok(())
    }
}
