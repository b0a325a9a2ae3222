//! Datasets: loading, the built-in synthetic dataset, the decoded on-disk form, and
//! the A/B split of the transfer experiment.
//!
//! Every source becomes one in-memory [`Dataset`] (u8 CHW pixels, u16 labels, class
//! names, optional coarse groups). A dataset is decoded once and stored in a raw form
//! ([`Dataset::write`], [`Dataset::read`]) that reads back at disk speed; [`split`]
//! divides its classes into halves A and B ([`Half`]), which store the same way.
//!
//! Sources, each behind one function and all behind [`load`] (which detects the
//! format): MNIST/Fashion-MNIST IDX files, raw or gzipped ([`read_idx`]); the CIFAR-10
//! and CIFAR-100 binary releases ([`read_cifar10`], [`read_cifar100`], the latter with
//! its coarse labels as groups); image folders ([`read_folder`]); Hugging Face parquet
//! ([`read_parquet`], behind the `parquet` cargo feature because the crate is heavy);
//! and the built-in [`synthetic`] dataset. Loaders check sizes, magic numbers and
//! labels as they read, so an error names the file (and record or row) at fault.
//!
//! # The synthetic dataset
//!
//! [`synthetic`] builds a dataset with the structure the experiment needs, so that the
//! similar/dissimilar contrast of the paper exists by construction:
//!
//! - **Low level, shared by all classes.** Every image is anti-aliased strokes
//!   (straight and curved), rings and soft blobs over an oriented sinusoidal grating,
//!   with pixel noise; colour (C = 3) and polarity (light-on-dark or the reverse) are
//!   drawn per image, never per class. First-layer features (edges, bars, blobs,
//!   colour opponents) are therefore useful for every class.
//! - **Mid level, shared within a group.** Each group has a *style* from one of four
//!   families, cycled over the groups (g0 straight strokes with dots, g1 curved strokes
//!   with rings, g2 rings with straight strokes, g3 blobs with curved strokes; each
//!   jittered in its curvature and radii), and four *motifs* drawn in that style: two
//!   or three elements in a local frame, each motif with its own size. Motifs of
//!   different groups therefore differ in kind, and motif detectors learnt on one
//!   group's classes serve its other classes and much less another group's.
//! - **High level, per class.** A class is a pair of its group's motifs, distinct
//!   within the group (4 motifs give 6 pairs, so the 5 classes of a default group
//!   share motifs). The two motifs sit side by side, in either order, along a roughly
//!   horizontal direction drawn per image: a class is told by *which* motifs it shows,
//!   not where, so features learnt on some classes of a group (motif detectors) carry
//!   over to its other classes, and the random split, whose halves mix all groups,
//!   transfers far better than the by-group split.
//! - **Per image.** Global shift (+-6% of the canvas), scale (0.85-1.15) and rotation
//!   (+-20 degrees); the pair's order and direction (+-29 degrees around horizontal);
//!   per motif a position jitter, +-17 degrees of rotation, +-10% size and a 2% chance
//!   of being missing; stroke width 0.45-1 px per 28 px; 0-2 faint clutter strokes;
//!   grating amplitude, frequency and angle; pixel noise of standard deviation `noise`.
//!
//! Classes are dealt to groups in contiguous blocks (c00-c04 in g0 by default), so
//! `SplitMethod::ByGroup { a: vec![] }` gives the dissimilar split (A = the first half
//! of the groups) and `SplitMethod::Random` a similar one. Image `i` of a part is
//! drawn from `Rng::derive(seed, "synthetic/<part>/<i>")`, so generation is parallel
//! and deterministic (about 80,000 images/s on one core at 1x28x28). The difficulty
//! knobs are `noise` and `jitter`. With the dataset and network of
//! `pipelines/transfer-dissimilar.yaml` (one seed), base accuracy is about 83% on the
//! random halves and 75% on the group halves; at n=5, AnB is 15 points below base on
//! the random split and 33 on the by-group split (n=4: 10 and 25), while AnB at n=1
//! stays within about a point of BnB on both.

mod channels;
mod cifar;
mod dataset;
mod decode;
pub mod download;
mod error;
mod files;
mod folder;
mod idx;
mod load;
mod motif;
mod parquet;
mod raster;
mod split;
mod stored;
mod synthetic;

pub use channels::convert_channels;
pub use cifar::{CIFAR10_CLASSES, read_cifar10, read_cifar100};
pub use dataset::{Dataset, Part};
pub use decode::ImageOrigin;
pub use error::DataError;
pub use folder::read_folder;
pub use idx::{FASHION_MNIST_CLASSES, read_idx};
pub use load::{Format, LoadOptions, detect, load};
pub use parquet::read_parquet;
pub use split::{Half, SplitMethod, split};
pub use stored::{FORMAT_VERSION, HEADER_FILE};
pub use synthetic::{SyntheticParams, synthetic};
