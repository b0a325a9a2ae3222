//! Where a network trains. The CPU runs the custom kernels of `kernels/` (the fast,
//! bit-reproducible path); a CUDA GPU runs candle's stock operations (`ops::stock`),
//! available when pipe is built with `--features cuda` on a machine with the CUDA
//! toolkit. A GPU run is deterministic on one GPU model and driver but does not give
//! the CPU's bytes, so the device is part of a training stage's key.

use candle_core::Device;
use serde::{Deserialize, Serialize};

use super::error::NnError;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    #[default]
    Cpu,
    /// The first CUDA device (select another with `CUDA_VISIBLE_DEVICES`).
    Cuda,
}

impl Backend {
    pub fn is_cpu(&self) -> bool {
        *self == Backend::Cpu
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Cuda => "cuda",
        }
    }

    /// Whether this build can run on it at all (a GPU may still be missing).
    pub fn compiled(self) -> bool {
        match self {
            Backend::Cpu => true,
            Backend::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The candle device, or why it cannot be had here.
    pub fn device(self) -> Result<Device, NnError> {
        match self {
            Backend::Cpu => Ok(Device::Cpu),
            _ if !self.compiled() => Err(NnError::Device(
                "this build of pipe has no CUDA support: build it with `cargo build --release --features cuda` \
                 on a machine with the CUDA toolkit, or train with `device: cpu`"
                    .into(),
            )),
            Backend::Cuda => {
                Device::new_cuda(0).map_err(|e| NnError::Device(format!("cannot open CUDA device 0: {e}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_always_and_cuda_only_when_built_for_it() {
        assert!(Backend::Cpu.device().unwrap().is_cpu());
        match Backend::Cuda.device() {
            Ok(d) => assert!(cfg!(feature = "cuda") && d.is_cuda()),
            Err(e) if !cfg!(feature = "cuda") => assert!(e.to_string().contains("--features cuda"), "{e}"),
            // Built for CUDA on a machine without a GPU: the driver's reason is shown.
            Err(e) => assert!(e.to_string().starts_with("cannot open CUDA device 0"), "{e}"),
        }
        assert_eq!(serde_json::to_string(&Backend::Cuda).unwrap(), "\"cuda\"");
    }
}
