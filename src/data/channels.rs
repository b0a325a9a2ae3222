//! Grayscale <-> RGB conversion, and the HWC -> CHW reordering decoded images need.
//! Gray becomes RGB by repetition; RGB becomes gray by Rec. 601 luma, as most image
//! libraries do.

use rayon::prelude::*;

use super::{DataError, Dataset, Part};

fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((299 * r as u32 + 587 * g as u32 + 114 * b as u32 + 500) / 1000) as u8
}

/// Writes interleaved (HWC) `src` of `from` channels as planar (CHW) `out` of `to`
/// channels; `from` and `to` are 1 or 3.
pub(crate) fn hwc_to_chw(src: &[u8], from: usize, to: usize, out: &mut [u8]) {
    let plane = src.len() / from;
    match (from, to) {
        (1, 1) => out.copy_from_slice(src),
        (1, 3) => out.chunks_exact_mut(plane).for_each(|p| p.copy_from_slice(src)),
        (3, 1) => {
            for (o, px) in out.iter_mut().zip(src.chunks_exact(3)) {
                *o = luma(px[0], px[1], px[2]);
            }
        }
        (3, 3) => {
            for (i, px) in src.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    out[c * plane + i] = px[c];
                }
            }
        }
        _ => unreachable!("channels are 1 or 3"),
    }
}

/// The dataset with `channels` channels (1 or 3), converting every image if needed.
pub fn convert_channels(mut ds: Dataset, channels: usize) -> Result<Dataset, DataError> {
    if channels != 1 && channels != 3 {
        return Err(DataError::Channels { channels });
    }
    let from = ds.shape[0];
    if from == channels {
        return Ok(ds);
    }
    if from != 1 && from != 3 {
        return Err(DataError::Channels { channels: from });
    }
    let plane = ds.shape[1] * ds.shape[2];
    let convert = |part: &mut Part| {
        let n = part.len();
        let mut out = vec![0u8; n * plane * channels];
        out.par_chunks_mut(plane * channels).zip(part.pixels.par_chunks(plane * from)).for_each(|(o, chw)| {
            // CHW -> HWC for the shared converter: cheap at these sizes.
            let hwc: Vec<u8> = (0..plane).flat_map(|i| (0..from).map(move |c| chw[c * plane + i])).collect();
            hwc_to_chw(&hwc, from, channels, o);
        });
        part.pixels = out;
    };
    convert(&mut ds.train);
    if let Some(test) = &mut ds.test {
        convert(test);
    }
    ds.shape[0] = channels;
    Ok(ds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hwc_to_chw_all_cases() {
        let rgb = [10, 20, 30, 40, 50, 60]; // two pixels
        let mut out = [0; 6];
        hwc_to_chw(&rgb, 3, 3, &mut out);
        assert_eq!(out, [10, 40, 20, 50, 30, 60]);
        let mut gray = [0; 2];
        hwc_to_chw(&rgb, 3, 1, &mut gray);
        assert_eq!(gray, [luma(10, 20, 30), luma(40, 50, 60)]);
        assert_eq!(luma(255, 255, 255), 255);
        hwc_to_chw(&[7, 9], 1, 3, &mut out);
        assert_eq!(out, [7, 9, 7, 9, 7, 9]);
    }

    #[test]
    fn dataset_conversion_round_trips_gray() {
        let ds = super::super::dataset::tests::tiny(2, 2, true);
        let rgb = convert_channels(ds.clone(), 3).unwrap();
        assert_eq!(rgb.shape, [3, 2, 3]);
        rgb.check().unwrap();
        assert_eq!(convert_channels(rgb, 1).unwrap(), ds);
        assert!(matches!(convert_channels(ds, 2), Err(DataError::Channels { channels: 2 })));
    }
}
