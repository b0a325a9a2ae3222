//! The mid-level parts of the synthetic dataset: a motif is two or three elements
//! (curved strokes, rings, blobs) in a local frame of [-1, 1]^2. Each group draws its
//! own motifs under its own style (how curved, which elements, how large), so motifs
//! are shared inside a group and differ between groups, while every motif is built
//! from the same low-level primitives.

use super::raster::{Canvas, Colour};
use crate::rng::Rng;

#[derive(Debug, Clone)]
pub(crate) enum Element {
    /// Quadratic Bezier from `p[0]` to `p[2]` with control point `p[1]`.
    Stroke {
        p: [[f32; 2]; 3],
    },
    Ring {
        c: [f32; 2],
        radius: f32,
    },
    Blob {
        c: [f32; 2],
        radius: f32,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Motif {
    pub(crate) elements: Vec<Element>,
}

/// How a group draws its motifs.
#[derive(Debug, Clone)]
pub(crate) struct Style {
    /// Relative odds of stroke, ring, blob.
    odds: [f32; 3],
    /// Largest bend of a stroke's control point, as a fraction of its length.
    curvature: f32,
    /// Ring and blob radii.
    radius: [f32; 2],
}

impl Style {
    /// The style of group `g`. Groups cycle through four families, so that any two
    /// of the first four groups differ in kind and not just by chance: straight strokes
    /// with dots, curved strokes with rings, rings with straight strokes, blobs with
    /// curved strokes. Each family is jittered by `rng`. Every family still uses
    /// strokes and round shapes, so the low level stays common to all groups.
    pub(crate) fn for_group(g: usize, rng: &mut Rng) -> Style {
        let lo = rng.range_f32(0.2, 0.35);
        let radius = [lo, lo + rng.range_f32(0.1, 0.25)];
        let (odds, curvature) = match g % 4 {
            0 => ([1.0, 0.0, 0.3], rng.range_f32(0.0, 0.08)),
            1 => ([1.0, 0.35, 0.0], rng.range_f32(0.5, 0.8)),
            2 => ([0.4, 1.0, 0.0], rng.range_f32(0.0, 0.08)),
            _ => ([0.6, 0.0, 1.0], rng.range_f32(0.5, 0.8)),
        };
        Style { odds, curvature, radius }
    }
}

impl Motif {
    pub(crate) fn random(style: &Style, rng: &mut Rng) -> Motif {
        let n = 2 + rng.below(2) as usize;
        let elements = (0..n).map(|_| element(style, rng)).collect();
        Motif { elements }
    }

    /// Draws the motif mapped by `to_px` (local frame -> pixels) with stroke half-width
    /// `r` and `scale` pixels per local unit (for radii).
    pub(crate) fn draw(
        &self,
        canvas: &mut Canvas,
        to_px: impl Fn([f32; 2]) -> [f32; 2],
        scale: f32,
        r: f32,
        colour: Colour,
    ) {
        for e in &self.elements {
            match e {
                Element::Stroke { p } => {
                    let [a, c, b] = p.map(&to_px);
                    canvas.polyline(&bezier(a, c, b), r, colour);
                }
                Element::Ring { c, radius } => {
                    canvas.ring(to_px(*c), radius * scale, r, colour);
                }
                Element::Blob { c, radius } => {
                    canvas.blob(to_px(*c), radius * scale * 0.8 + r, colour);
                }
            }
        }
    }
}

fn point(rng: &mut Rng, extent: f32) -> [f32; 2] {
    [rng.range_f32(-extent, extent), rng.range_f32(-extent, extent)]
}

fn element(style: &Style, rng: &mut Rng) -> Element {
    let total: f32 = style.odds.iter().sum();
    let mut pick = rng.f32() * total;
    let kind = style
        .odds
        .iter()
        .position(|&o| {
            pick -= o;
            pick < 0.0
        })
        .unwrap_or(0);
    match kind {
        1 | 2 => {
            let radius = rng.range_f32(style.radius[0], style.radius[1]);
            let c = point(rng, 1.0 - radius);
            if kind == 1 { Element::Ring { c, radius } } else { Element::Blob { c, radius } }
        }
        _ => {
            // Endpoints at least 0.8 apart, so a stroke is a stroke and not a dot.
            let (a, b) = loop {
                let (a, b) = (point(rng, 0.9), point(rng, 0.9));
                if (a[0] - b[0]).hypot(a[1] - b[1]) > 0.8 {
                    break (a, b);
                }
            };
            let sign = if rng.bool(0.5) { 1.0 } else { -1.0 };
            let bend = sign * rng.range_f32(0.5 * style.curvature, style.curvature);
            let mid = [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0];
            let c = [mid[0] - bend * (b[1] - a[1]), mid[1] + bend * (b[0] - a[0])];
            Element::Stroke { p: [a, c, b] }
        }
    }
}

/// A quadratic Bezier as 5 points (4 segments): smooth enough at these sizes.
fn bezier(a: [f32; 2], c: [f32; 2], b: [f32; 2]) -> [[f32; 2]; 5] {
    std::array::from_fn(|i| {
        let t = i as f32 / 4.0;
        let (u, v, w) = ((1.0 - t) * (1.0 - t), 2.0 * t * (1.0 - t), t * t);
        [u * a[0] + v * c[0] + w * b[0], u * a[1] + v * c[1] + w * b[1]]
    })
}
