//! Images as handed in by the caller (u8 pixels) and their conversion to network input:
//! one batch at a time, so memory stays at one batch of f32 whatever the dataset size,
//! with augmentation folded into the same pass.

use candle_core::{Device, Tensor};

use super::error::NnError;
use crate::rng::Rng;

/// A borrowed set of images: `pixels` holds N*C*H*W bytes, row-major, 0..255.
#[derive(Clone, Copy, Debug)]
pub struct Images<'a> {
    pub pixels: &'a [u8],
    pub labels: &'a [u16],
    /// C, H, W.
    pub shape: [usize; 3],
}

/// Random crops and flips for training batches.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Augment {
    /// Pad each side with this many black pixels and crop back to size at a random
    /// offset; 0 = off.
    pub crop_pad: usize,
    /// Mirror left-right with probability 1/2.
    pub flip: bool,
}

impl Augment {
    pub const NONE: Augment = Augment { crop_pad: 0, flip: false };

    fn is_off(&self) -> bool {
        self.crop_pad == 0 && !self.flip
    }
}

/// Pixel value p maps to (p/255 - MEAN) / STD: fixed constants rather than dataset
/// statistics, so the input of a network does not depend on which images it was
/// trained with and a transferred layer sees the same scale on A and on B.
const MEAN: f32 = 0.5;
const STD: f32 = 0.25;

impl<'a> Images<'a> {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Checks the images against the network input and class count.
    pub(crate) fn check(&self, input: [usize; 3], classes: usize) -> Result<(), NnError> {
        if self.shape != input {
            return Err(NnError::Data(format!(
                "images are {:?} (C, H, W), the network expects {:?}",
                self.shape, input
            )));
        }
        if self.pixels.len() != self.len() * self.image_len() {
            return Err(NnError::Data(format!(
                "{} pixel bytes for {} labels of {} bytes each",
                self.pixels.len(),
                self.len(),
                self.image_len()
            )));
        }
        if let Some(bad) = self.labels.iter().find(|&&l| l as usize >= classes) {
            return Err(NnError::Data(format!("label {bad} is out of range for {classes} classes")));
        }
        Ok(())
    }

    /// The images at `indices` as a normalised (B, C, H, W) f32 tensor and their labels
    /// as a (B,) u32 tensor. With augmentation on, each image draws its crop offset and
    /// flip from `rng`, in batch order, so a batch is a pure function of the stream.
    pub(crate) fn batch(
        &self,
        indices: &[usize],
        augment: &Augment,
        rng: &mut Rng,
    ) -> Result<(Tensor, Tensor), NnError> {
        let [c, h, w] = self.shape;
        let size = self.image_len();
        let mut x = Vec::with_capacity(indices.len() * size);
        let scale = 1.0 / (255.0 * STD);
        let shift = MEAN / STD;
        let norm = |p: u8| p as f32 * scale - shift;
        for &i in indices {
            let img = &self.pixels[i * size..(i + 1) * size];
            if augment.is_off() {
                x.extend(img.iter().map(|&p| norm(p)));
                continue;
            }
            let pad = augment.crop_pad;
            let (dy, dx) = if pad > 0 {
                let span = 2 * pad as u64 + 1;
                (rng.below(span) as isize - pad as isize, rng.below(span) as isize - pad as isize)
            } else {
                (0, 0)
            };
            let flip = augment.flip && rng.bool(0.5);
            let black = norm(0);
            for ch in 0..c {
                let plane = &img[ch * h * w..(ch + 1) * h * w];
                for y in 0..h as isize {
                    let sy = y + dy;
                    for xx in 0..w as isize {
                        let sx0 = if flip { w as isize - 1 - xx } else { xx };
                        let sx = sx0 + dx;
                        let inside = sy >= 0 && sy < h as isize && sx >= 0 && sx < w as isize;
                        x.push(if inside { norm(plane[sy as usize * w + sx as usize]) } else { black });
                    }
                }
            }
        }
        let x = Tensor::from_vec(x, (indices.len(), c, h, w), &Device::Cpu)?;
        Ok((x, self.labels_of(indices)?))
    }

    /// The labels at `indices` as a (B,) u32 tensor.
    pub(crate) fn labels_of(&self, indices: &[usize]) -> Result<Tensor, NnError> {
        let labels: Vec<u32> = indices.iter().map(|&i| self.labels[i] as u32).collect();
        Ok(Tensor::from_vec(labels, indices.len(), &Device::Cpu)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_normalises_and_augments_reproducibly() {
        let pixels: Vec<u8> = (0..2 * 2 * 3 * 3).map(|i| (i * 7) as u8).collect();
        let labels = [1u16, 0];
        let images = Images { pixels: &pixels, labels: &labels, shape: [2, 3, 3] };
        images.check([2, 3, 3], 2).unwrap();
        assert!(images.check([2, 3, 3], 1).is_err());
        let mut rng = Rng::new(0);
        let (x, y) = images.batch(&[1, 0], &Augment::NONE, &mut rng).unwrap();
        assert_eq!(x.dims(), &[2, 2, 3, 3]);
        assert_eq!(y.to_vec1::<u32>().unwrap(), vec![0, 1]);
        let first = x.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0];
        assert!((first - ((18 * 7) as f32 / 255.0 - 0.5) / 0.25).abs() < 1e-6);
        // Nothing drawn without augmentation.
        assert_eq!(rng, Rng::new(0));

        let aug = Augment { crop_pad: 1, flip: true };
        let a = images.batch(&[0, 1], &aug, &mut Rng::new(3)).unwrap().0;
        let b = images.batch(&[0, 1], &aug, &mut Rng::new(3)).unwrap().0;
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(a, b.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        let plain = images.batch(&[0, 1], &Augment::NONE, &mut Rng::new(3)).unwrap().0;
        assert_ne!(a, plain.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    }
}
