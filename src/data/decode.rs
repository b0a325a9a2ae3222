//! Encoded images (PNG, JPEG) -> one uniform `Part`, shared by the image-folder and
//! parquet loaders.
//!
//! Decoding runs in parallel; errors report the first bad image in input order, so
//! the message does not depend on scheduling. Every image must have the first image's
//! size; the channel count is the caller's, or else the majority's (ties go to RGB),
//! and the minority is converted.

use std::fmt;
use std::path::PathBuf;

use rayon::prelude::*;

use super::channels::hwc_to_chw;
use super::{DataError, Part};

/// Where an encoded image came from: a file, or a row of a table file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOrigin {
    pub path: PathBuf,
    pub row: Option<usize>,
}

impl fmt::Display for ImageOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.row {
            None => write!(f, "{}", self.path.display()),
            Some(row) => write!(f, "{} row {row}", self.path.display()),
        }
    }
}

/// An image in its own channel count (1 or 3), interleaved.
pub(crate) struct Decoded {
    w: u32,
    h: u32,
    channels: usize,
    hwc: Vec<u8>,
}

/// Decodes every item in parallel with `decode`.
pub(crate) fn decode_all<T: Sync>(
    items: &[T],
    decode: impl Fn(&T) -> Result<Decoded, DataError> + Sync + Send,
) -> Result<Vec<Decoded>, DataError> {
    let results: Vec<Result<Decoded, DataError>> = items.par_iter().map(decode).collect();
    results.into_iter().collect()
}

pub(crate) fn decode_bytes(bytes: &[u8], origin: impl Fn() -> ImageOrigin) -> Result<Decoded, DataError> {
    let img = image::load_from_memory(bytes)
        .map_err(|source| DataError::Decode { origin: origin(), source: Box::new(source) })?;
    let (w, h) = (img.width(), img.height());
    Ok(if img.color().has_color() {
        Decoded { w, h, channels: 3, hwc: img.into_rgb8().into_raw() }
    } else {
        Decoded { w, h, channels: 1, hwc: img.into_luma8().into_raw() }
    })
}

/// Builds the parts (e.g. train and test, each with its origins, labels and decoded
/// images) into one shape: the first image's size and `channels` or the majority's.
pub(crate) fn assemble<const N: usize>(
    parts: [(&[ImageOrigin], Vec<u16>, &[Decoded]); N],
    channels: Option<usize>,
) -> Result<([usize; 3], [Part; N]), DataError> {
    let all = || parts.iter().flat_map(|(o, _, d)| o.iter().zip(d.iter()));
    let Some((first_origin, first)) = all().next() else { unreachable!("loaders refuse sources without images") };
    for (origin, img) in all() {
        if (img.w, img.h) != (first.w, first.h) {
            return Err(DataError::ImageSize {
                origin: origin.clone(),
                found: [img.w, img.h],
                first: first_origin.clone(),
                expected: [first.w, first.h],
            });
        }
    }
    let channels = channels.unwrap_or_else(|| {
        let gray = all().filter(|(_, i)| i.channels == 1).count();
        if 2 * gray > all().count() { 1 } else { 3 }
    });
    let shape = [channels, first.h as usize, first.w as usize];
    let len = shape.iter().product::<usize>();
    let parts = parts.map(|(_, labels, images)| {
        let mut pixels = vec![0u8; images.len() * len];
        pixels.par_chunks_mut(len).zip(images).for_each(|(out, img)| hwc_to_chw(&img.hwc, img.channels, channels, out));
        Part { pixels, labels }
    });
    Ok((shape, parts))
}
