//! The built-in procedural dataset, designed so the transfer experiment has something
//! to measure in seconds on a laptop. See the module docs of `data` for the design.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::motif::{Motif, Style};
use super::raster::{Canvas, Colour};
use super::{DataError, Dataset, Part};
use crate::rng::Rng;

/// Motifs each group owns; classes of a group combine these.
const MOTIFS_PER_GROUP: usize = 4;
/// Motifs per class: a class is a pair of its group's motifs.
const PARTS_PER_CLASS: usize = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticParams {
    pub classes: usize,
    /// Classes are dealt to groups in contiguous blocks: c00..c04 in g0, and so on.
    pub groups: usize,
    /// C, H, W; C is 1 (grayscale) or 3 (colour).
    pub image: [usize; 3],
    /// Training images per class.
    pub per_class: usize,
    /// Test images per class; 0 leaves the dataset without a test part.
    pub test_per_class: usize,
    /// Standard deviation of the pixel noise, in units of full scale.
    pub noise: f32,
    /// Scales all per-image geometric variation (shift, scale, rotation, part jitter,
    /// the chance a part is missing); 0 draws every image of a class in one pose.
    /// With `noise`, the knob for how far below ceiling a network ends.
    pub jitter: f32,
    pub seed: u64,
}

impl Default for SyntheticParams {
    fn default() -> Self {
        SyntheticParams {
            classes: 20,
            groups: 4,
            image: [1, 28, 28],
            per_class: 500,
            test_per_class: 100,
            noise: 0.1,
            jitter: 1.0,
            seed: 0,
        }
    }
}

/// The largest synthetic dataset, in bytes of pixels.
const MAX_BYTES: usize = 4 << 30;

impl SyntheticParams {
    pub fn check(&self) -> Result<(), DataError> {
        let bad = |field, value: String, rule| Err(DataError::BadParam { field, value, rule });
        let [c, h, w] = self.image;
        if !(4..=u16::MAX as usize).contains(&self.classes) {
            return bad(
                "classes",
                self.classes.to_string(),
                "must be between 4 and 65535 (halves A and B need at least 2 classes each)",
            );
        }
        if !(1..=self.classes).contains(&self.groups) {
            return bad("groups", self.groups.to_string(), "must be between 1 and classes");
        }
        if c != 1 && c != 3 {
            return bad("image", format!("{:?}", self.image), "channels must be 1 or 3");
        }
        if !(8..=1024).contains(&h) || !(8..=1024).contains(&w) {
            return bad("image", format!("{:?}", self.image), "height and width must be 8..=1024");
        }
        if self.per_class == 0 {
            return bad("per_class", "0".into(), "must be at least 1");
        }
        let images = self.classes.saturating_mul(self.per_class.saturating_add(self.test_per_class));
        let bytes = images.saturating_mul(c * h * w);
        if bytes > MAX_BYTES {
            return bad(
                "per_class",
                self.per_class.to_string(),
                "makes a dataset of more than 4 GiB of pixels; use fewer images per class or smaller images",
            );
        }
        if !(self.noise.is_finite() && self.noise >= 0.0) {
            return bad("noise", self.noise.to_string(), "must be a finite number >= 0");
        }
        if !(0.0..=3.0).contains(&self.jitter) {
            return bad("jitter", self.jitter.to_string(), "must be between 0 and 3");
        }
        Ok(())
    }
}

/// Generates the dataset. Image `i` of a part depends only on the seed, the part and
/// `i`, so generation is parallel and still byte-for-byte deterministic.
pub fn synthetic(p: &SyntheticParams) -> Result<Dataset, DataError> {
    p.check()?;
    let world = World::new(p);
    let part = |name: &str, per_class: usize| world.part(p, name, per_class);
    Ok(Dataset {
        shape: p.image,
        classes: (0..p.classes).map(|c| numbered("c", c, p.classes, 2)).collect(),
        groups: Some(world.group_of.iter().map(|&g| numbered("g", g, p.groups, 1)).collect()),
        train: part("train", p.per_class),
        test: (p.test_per_class > 0).then(|| part("test", p.test_per_class)),
    })
}

/// "c07": zero-padded to the widest number, at least `min` digits.
fn numbered(prefix: &str, i: usize, n: usize, min: usize) -> String {
    let width = (n.saturating_sub(1)).to_string().len().max(min);
    format!("{prefix}{i:0width$}")
}

/// One of a group's motifs with its size, in canvas units ([-1, 1] across the image).
struct GroupMotif {
    motif: Motif,
    scale: f32,
}

/// Everything fixed by the seed before any image is drawn.
struct World {
    motifs: Vec<Vec<GroupMotif>>,
    group_of: Vec<usize>,
    /// The pair of its group's motifs each class shows.
    parts: Vec<[usize; PARTS_PER_CLASS]>,
}

impl World {
    fn new(p: &SyntheticParams) -> World {
        let motifs = (0..p.groups)
            .map(|g| {
                let mut rng = Rng::derive(p.seed, &format!("synthetic/group/{g}"));
                let style = Style::for_group(g, &mut rng);
                (0..MOTIFS_PER_GROUP)
                    .map(|_| GroupMotif { motif: Motif::random(&style, &mut rng), scale: rng.range_f32(0.38, 0.46) })
                    .collect()
            })
            .collect();
        let group_of: Vec<usize> = (0..p.classes).map(|c| c * p.groups / p.classes).collect();
        // Classes of a group get distinct pairs of its motifs (they repeat only past 6
        // classes a group), dealt in an order drawn per group.
        let pairs: Vec<Vec<[usize; 2]>> = (0..p.groups)
            .map(|g| {
                let mut all: Vec<[usize; 2]> =
                    (0..MOTIFS_PER_GROUP).flat_map(|i| (i + 1..MOTIFS_PER_GROUP).map(move |j| [i, j])).collect();
                Rng::derive(p.seed, &format!("synthetic/group/{g}/pairs")).shuffle(&mut all);
                all
            })
            .collect();
        let mut dealt = vec![0usize; p.groups];
        let parts = group_of
            .iter()
            .map(|&g| {
                let k = dealt[g];
                dealt[g] += 1;
                pairs[g][k % pairs[g].len()]
            })
            .collect();
        World { motifs, group_of, parts }
    }

    fn part(&self, p: &SyntheticParams, name: &str, per_class: usize) -> Part {
        let n = p.classes * per_class;
        let len = p.image.iter().product::<usize>();
        let labels: Vec<u16> = (0..n).map(|i| (i % p.classes) as u16).collect();
        let mut pixels = vec![0u8; n * len];
        pixels.par_chunks_mut(len).enumerate().for_each_init(
            || Canvas::new(p.image),
            |canvas, (i, out)| {
                let mut rng = Rng::derive(p.seed, &format!("synthetic/{name}/{i}"));
                self.render(p, labels[i] as usize, &mut rng, canvas);
                canvas.finish(p.noise, &mut rng, out);
            },
        );
        Part { pixels, labels }
    }

    /// One image of `class`: background texture, clutter strokes, then the class's two
    /// motifs side by side along a direction drawn per image, each jittered, with global
    /// shift, scale and rotation over both.
    fn render(&self, p: &SyntheticParams, class: usize, rng: &mut Rng, canvas: &mut Canvas) {
        let [c, h, w] = p.image;
        let size = h.min(w) as f32;

        // Polarity and colours: mostly light-on-dark, sometimes inverted.
        let dark = rng.bool(0.75);
        let (bg_level, fg_level) = if dark {
            (rng.range_f32(0.0, 0.3), rng.range_f32(0.65, 1.0))
        } else {
            (rng.range_f32(0.6, 0.9), rng.range_f32(0.0, 0.3))
        };
        let colour = |rng: &mut Rng, level: f32, spread: f32| -> Colour {
            if c == 1 { [level; 3] } else { [0; 3].map(|_| (level + rng.range_f32(-spread, spread)).clamp(0.0, 1.0)) }
        };
        let bg = colour(rng, bg_level, 0.15);
        canvas.grating(
            bg,
            rng.range_f32(0.0, 0.12),
            rng.range_f32(0.06, 0.3),
            rng.range_f32(0.0, std::f32::consts::PI),
            rng.range_f32(0.0, std::f32::consts::TAU),
        );

        let half_width = rng.range_f32(0.45, 1.0) * size / 28.0;
        let to_px = |q: [f32; 2]| [(q[0] + 1.0) * w as f32 / 2.0, (q[1] + 1.0) * h as f32 / 2.0];

        // Clutter: short faint strokes anywhere, the same for every class.
        for _ in 0..rng.below(3) {
            let a = [rng.range_f32(-1.0, 1.0), rng.range_f32(-1.0, 1.0)];
            let (len, dir) = (rng.range_f32(0.15, 0.4), rng.range_f32(0.0, std::f32::consts::TAU));
            let b = [a[0] + len * dir.cos(), a[1] + len * dir.sin()];
            let faint = colour(rng, (bg_level + fg_level) / 2.0, 0.2);
            canvas.polyline(&[to_px(a), to_px(b)], half_width * 0.8, faint);
        }

        let j = p.jitter;
        let sym = |rng: &mut Rng, half: f32| rng.range_f32(-half, half) * j;
        let shift = [sym(rng, 0.12), sym(rng, 0.12)];
        let g_scale = 1.0 + sym(rng, 0.15);
        let g_rot = rotation(sym(rng, 0.35));
        // Where the two motifs sit: side by side about the centre, in either order and
        // along a roughly horizontal direction drawn per image, so a class is told by
        // which motifs it shows and not by where they are.
        let flip = if rng.bool(0.5 * j.min(1.0)) { std::f32::consts::PI } else { 0.0 };
        let dir = flip + sym(rng, 0.5);
        let half_gap = 0.5 * (0.9 + sym(rng, 0.08));
        let group = &self.motifs[self.group_of[class]];
        for (k, &motif) in self.parts[class].iter().enumerate() {
            if rng.bool(0.02 * j) {
                continue; // an occluded / missing part
            }
            let side = if k == 0 { half_gap } else { -half_gap };
            let at = [side * dir.cos() + 0.04 * j * rng.normal(), side * dir.sin() + 0.04 * j * rng.normal()];
            let angle = sym(rng, 0.3);
            let GroupMotif { motif, scale } = &group[motif];
            let scale = scale * (1.0 + sym(rng, 0.1)) * g_scale;
            let m = mul(g_rot, rotation(angle));
            let centre = apply(g_rot, at);
            let fg = colour(rng, fg_level, 0.35);
            motif.draw(
                canvas,
                |q| {
                    let v = apply(m, q);
                    to_px([
                        scale * v[0] + g_scale * centre[0] + shift[0],
                        scale * v[1] + g_scale * centre[1] + shift[1],
                    ])
                },
                scale * size / 2.0,
                half_width,
                fg,
            );
        }
    }
}

type Mat = [[f32; 2]; 2];

fn rotation(a: f32) -> Mat {
    let (s, c) = a.sin_cos();
    [[c, -s], [s, c]]
}

fn mul(a: Mat, b: Mat) -> Mat {
    std::array::from_fn(|i| std::array::from_fn(|j| a[i][0] * b[0][j] + a[i][1] * b[1][j]))
}

fn apply(m: Mat, v: [f32; 2]) -> [f32; 2] {
    [m[0][0] * v[0] + m[0][1] * v[1], m[1][0] * v[0] + m[1][1] * v[1]]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(image: [usize; 3]) -> SyntheticParams {
        SyntheticParams { classes: 8, groups: 2, image, per_class: 20, test_per_class: 5, ..SyntheticParams::default() }
    }

    #[test]
    fn shapes_names_and_groups() {
        let ds = synthetic(&small([3, 32, 32])).unwrap();
        ds.check().unwrap();
        assert_eq!(ds.train.len(), 160);
        assert_eq!(ds.test.as_ref().unwrap().len(), 40);
        assert_eq!(ds.classes[..3], ["c00", "c01", "c02"]);
        assert_eq!(ds.groups.as_ref().unwrap(), &["g0", "g0", "g0", "g0", "g1", "g1", "g1", "g1"]);
        let d = SyntheticParams::default();
        assert_eq!((d.classes, d.groups), (20, 4));
        let no_test = SyntheticParams { test_per_class: 0, ..small([1, 28, 28]) };
        assert!(synthetic(&no_test).unwrap().test.is_none());
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        let p = small([1, 28, 28]);
        let a = synthetic(&p).unwrap();
        assert_eq!(a, synthetic(&p).unwrap());
        let b = synthetic(&SyntheticParams { seed: 1, ..p }).unwrap();
        assert_ne!(a.train.pixels, b.train.pixels);
    }

    #[test]
    fn images_use_the_range_and_vary() {
        let ds = synthetic(&small([1, 28, 28])).unwrap();
        let img = |i| ds.train.image(i, ds.shape);
        // Same class (0 and 8), different images.
        assert_ne!(img(0), img(8));
        let (lo, hi) = (ds.train.pixels.iter().min(), ds.train.pixels.iter().max());
        assert!(*lo.unwrap() < 30 && *hi.unwrap() > 225);
    }

    #[test]
    fn bad_params_are_named() {
        let p = SyntheticParams { groups: 30, ..SyntheticParams::default() };
        assert_eq!(
            synthetic(&p).unwrap_err().to_string(),
            "synthetic parameter groups = 30: must be between 1 and classes"
        );
        let p = SyntheticParams { image: [2, 28, 28], ..SyntheticParams::default() };
        assert!(matches!(synthetic(&p), Err(DataError::BadParam { field: "image", .. })));
    }

    /// Pins the generator: cached datasets and every result downstream depend on its
    /// bytes, so a change here must be deliberate (and should bump whatever version
    /// the cache keys carry). Float functions come from the platform's libm, hence
    /// the platform gate.
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[test]
    fn golden_bytes() {
        let ds = synthetic(&SyntheticParams { per_class: 2, test_per_class: 1, ..small([3, 32, 32]) }).unwrap();
        let mut h = blake3::Hasher::new();
        h.update(&ds.train.pixels);
        h.update(&ds.test.unwrap().pixels);
        assert_eq!(h.finalize().to_hex()[..16], *"37f09367fd62879b");
    }

    /// How hard is a half? Prints the accuracy of a nearest-class-mean classifier on
    /// raw pixels (a floor, far below what a CNN reaches) for a random half and a
    /// group half; asserts only that it is above chance. The floor is low by design:
    /// a class is told by which motifs it shows, not where, and polarity is drawn per
    /// image, so the mean image of a class says little.
    #[test]
    fn nearest_mean_accuracy() {
        use crate::data::{SplitMethod, split};
        let p = SyntheticParams { per_class: 100, test_per_class: 50, ..SyntheticParams::default() };
        let ds = synthetic(&p).unwrap();
        for method in [SplitMethod::Random { seed: 0 }, SplitMethod::ByGroup { a: vec![] }] {
            let (a, _) = split(&ds, &method, None, 0.0, 0).unwrap();
            let (k, len) = (a.classes.len(), a.shape.iter().product::<usize>());
            let mut means = vec![0f32; k * len];
            for i in 0..a.train.len() {
                let l = a.train.labels[i] as usize;
                for (m, &v) in means[l * len..(l + 1) * len].iter_mut().zip(a.train.image(i, a.shape)) {
                    *m += v as f32 / p.per_class as f32;
                }
            }
            let correct = (0..a.test.len())
                .filter(|&i| {
                    let x = a.test.image(i, a.shape);
                    let d = |c: usize| -> f32 {
                        means[c * len..(c + 1) * len].iter().zip(x).map(|(m, &v)| (m - v as f32).powi(2)).sum()
                    };
                    (0..k).min_by(|&p, &q| d(p).total_cmp(&d(q))).unwrap() == a.test.labels[i] as usize
                })
                .count();
            let acc = correct as f32 / a.test.len() as f32;
            println!("nearest class mean, {method:?} half A ({k} classes): {:.1}%", 100.0 * acc);
            assert!(acc > 1.2 / k as f32, "{acc}");
        }
    }

    /// Prints the generation rate (not asserted: machines differ). Run in release to
    /// judge it: `cargo test --release synthetic_rate -- --nocapture`.
    #[test]
    fn synthetic_rate() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        for image in [[1, 28, 28], [3, 32, 32]] {
            let p = SyntheticParams { image, per_class: 100, test_per_class: 0, ..SyntheticParams::default() };
            let t = std::time::Instant::now();
            let ds = pool.install(|| synthetic(&p)).unwrap();
            let s = t.elapsed().as_secs_f64();
            let n = ds.train.len();
            println!("synthetic {image:?}: {n} images in {s:.3} s on one thread = {:.0} images/s", n as f64 / s);
        }
    }
}
