//! A tiny anti-aliased rasteriser for the synthetic dataset: strokes, rings and blobs
//! composited over an oriented-grating background, then pixel noise and quantisation.
//!
//! Coordinates are in pixels with pixel centres at `i + 0.5`. Every primitive touches
//! only its bounding box, which is what makes tens of thousands of images a second
//! possible on one core.

use crate::rng::Rng;

pub(crate) type Colour = [f32; 3];

/// A float image of `c` channels, CHW, values nominally in [0, 1].
pub(crate) struct Canvas {
    c: usize,
    h: usize,
    w: usize,
    v: Vec<f32>,
}

impl Canvas {
    pub(crate) fn new(shape: [usize; 3]) -> Canvas {
        let [c, h, w] = shape;
        Canvas { c, h, w, v: vec![0.0; c * h * w] }
    }

    /// Fills with `base` plus a sinusoidal grating `amp * sin(2 pi freq (x cos a + y sin
    /// a) + phase)`: an oriented texture every class shares. The sine is advanced by a
    /// rotation recurrence along each row instead of being evaluated per pixel.
    pub(crate) fn grating(&mut self, base: Colour, amp: f32, freq: f32, angle: f32, phase: f32) {
        let (sa, ca) = angle.sin_cos();
        let k = std::f32::consts::TAU * freq;
        let (ds, dc) = (k * ca).sin_cos();
        let plane = self.h * self.w;
        for y in 0..self.h {
            let start = k * ((y as f32 + 0.5) * sa + 0.5 * ca) + phase;
            let (mut s, mut co) = start.sin_cos();
            for x in 0..self.w {
                let g = amp * s;
                for (ch, b) in base.iter().enumerate().take(self.c) {
                    self.v[ch * plane + y * self.w + x] = b + g;
                }
                (s, co) = (s * dc + co * ds, co * dc - s * ds);
            }
        }
    }

    /// Blends `colour` in with per-pixel coverage `cover(x, y)` in [0, 1] over the box
    /// `[x0, x1) x [y0, y1)` (given in float pixels, clamped to the canvas).
    fn paint(&mut self, bbox: [f32; 4], colour: Colour, cover: impl Fn(f32, f32) -> f32) {
        let x0 = bbox[0].floor().max(0.0) as usize;
        let y0 = bbox[1].floor().max(0.0) as usize;
        let x1 = (bbox[2].ceil().max(0.0) as usize).min(self.w);
        let y1 = (bbox[3].ceil().max(0.0) as usize).min(self.h);
        let plane = self.h * self.w;
        for y in y0..y1 {
            let py = y as f32 + 0.5;
            for x in x0..x1 {
                let a = cover(x as f32 + 0.5, py);
                if a > 0.0 {
                    for (ch, col) in colour.iter().enumerate().take(self.c) {
                        let p = &mut self.v[ch * plane + y * self.w + x];
                        *p += a * (col - *p);
                    }
                }
            }
        }
    }

    /// A polyline of half-width `r` (pixels), coverage from the distance to the nearest
    /// segment so joints do not double up.
    pub(crate) fn polyline(&mut self, pts: &[[f32; 2]], r: f32, colour: Colour) {
        let pad = r + 1.0;
        let bbox = bounds(pts, pad);
        self.paint(bbox, colour, |x, y| {
            let mut d2 = f32::INFINITY;
            for s in pts.windows(2) {
                d2 = d2.min(seg_dist2([x, y], s[0], s[1]));
            }
            (r + 0.5 - d2.sqrt()).clamp(0.0, 1.0)
        });
    }

    /// A circle outline of radius `radius` and half-width `r`.
    pub(crate) fn ring(&mut self, c: [f32; 2], radius: f32, r: f32, colour: Colour) {
        let pad = radius + r + 1.0;
        let bbox = [c[0] - pad, c[1] - pad, c[0] + pad, c[1] + pad];
        self.paint(bbox, colour, |x, y| {
            let d = ((x - c[0]).powi(2) + (y - c[1]).powi(2)).sqrt();
            (r + 0.5 - (d - radius).abs()).clamp(0.0, 1.0)
        });
    }

    /// A soft filled disc, `(1 - d^2/R^2)^2` falloff: cheap and smooth.
    pub(crate) fn blob(&mut self, c: [f32; 2], radius: f32, colour: Colour) {
        let bbox = [c[0] - radius, c[1] - radius, c[0] + radius, c[1] + radius];
        let inv = 1.0 / (radius * radius);
        self.paint(bbox, colour, |x, y| {
            let t = 1.0 - ((x - c[0]).powi(2) + (y - c[1]).powi(2)) * inv;
            if t > 0.0 { (1.5 * t * t).min(1.0) } else { 0.0 }
        });
    }

    /// Adds zero-mean noise of standard deviation `sigma` (a triangular distribution,
    /// two uniforms from one draw: Gaussian-like and far cheaper than Box-Muller) and
    /// writes the image as u8.
    pub(crate) fn finish(&self, sigma: f32, rng: &mut Rng, out: &mut [u8]) {
        // Triangular on [-1, 1] has variance 1/6.
        let scale = sigma * 6f32.sqrt() / (1u64 << 32) as f32;
        for (o, &v) in out.iter_mut().zip(&self.v) {
            let bits = rng.next_u64();
            let u = (bits >> 32) as f32 + (bits & 0xFFFF_FFFF) as f32 - (1u64 << 32) as f32;
            let x = v + u * scale;
            *o = (x.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
        }
    }
}

fn bounds(pts: &[[f32; 2]], pad: f32) -> [f32; 4] {
    let mut b = [f32::INFINITY, f32::INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY];
    for p in pts {
        b[0] = b[0].min(p[0]);
        b[1] = b[1].min(p[1]);
        b[2] = b[2].max(p[0]);
        b[3] = b[3].max(p[1]);
    }
    [b[0] - pad, b[1] - pad, b[2] + pad, b[3] + pad]
}

/// Squared distance from `p` to the segment `a`-`b`.
fn seg_dist2(p: [f32; 2], a: [f32; 2], b: [f32; 2]) -> f32 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let (px, py) = (p[0] - a[0], p[1] - a[1]);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 { ((px * dx + py * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
    let (ex, ey) = (px - t * dx, py - t * dy);
    ex * ex + ey * ey
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(c: &Canvas) -> Vec<u8> {
        let mut out = vec![0; c.v.len()];
        c.finish(0.0, &mut Rng::new(0), &mut out);
        out
    }

    #[test]
    fn grating_recurrence_matches_direct_sine() {
        let mut c = Canvas::new([1, 8, 16]);
        c.grating([0.5; 3], 0.4, 0.13, 0.7, 0.3);
        let k = std::f32::consts::TAU * 0.13;
        for y in 0..8 {
            for x in 0..16 {
                let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
                let want = 0.5 + 0.4 * (k * (fx * 0.7f32.cos() + fy * 0.7f32.sin()) + 0.3).sin();
                assert!((c.v[y * 16 + x] - want).abs() < 1e-3, "{x},{y}");
            }
        }
    }

    #[test]
    fn primitives_paint_where_expected() {
        let mut c = Canvas::new([3, 10, 10]);
        c.polyline(&[[1.0, 5.5], [9.0, 5.5]], 1.0, [1.0, 0.0, 0.0]);
        let out = render(&c);
        // On the line: red; far from it: untouched; green channel never painted.
        assert_eq!(out[5 * 10 + 5], 255);
        assert_eq!(out[4 * 10 + 5], 128, "half covered");
        assert_eq!(out[3 * 10 + 5], 0);
        assert!(out[100..200].iter().all(|&v| v == 0));

        let mut c = Canvas::new([1, 11, 11]);
        c.ring([5.5, 5.5], 4.0, 0.5, [1.0; 3]);
        c.blob([5.5, 5.5], 2.0, [0.5; 3]);
        let out = render(&c);
        assert_eq!(out[5 * 11 + 5], 128, "blob centre");
        assert_eq!(out[5 * 11 + 9], 255, "ring");
        assert_eq!(out[0], 0, "corner");
    }

    #[test]
    fn noise_has_the_requested_spread() {
        let mut c = Canvas::new([1, 64, 64]);
        c.grating([0.5; 3], 0.0, 0.1, 0.0, 0.0);
        let mut out = vec![0; 64 * 64];
        c.finish(0.1, &mut Rng::new(1), &mut out);
        let xs: Vec<f32> = out.iter().map(|&v| v as f32 / 255.0 - 0.5).collect();
        let mean = xs.iter().sum::<f32>() / xs.len() as f32;
        let sd = (xs.iter().map(|x| x * x).sum::<f32>() / xs.len() as f32).sqrt();
        assert!(mean.abs() < 0.01 && (sd - 0.1).abs() < 0.01, "{mean} {sd}");
    }
}
