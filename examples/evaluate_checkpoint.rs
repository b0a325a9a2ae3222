//! Open a network trained by a pipeline and evaluate it on other data: here, a base
//! network of quick.yaml on a noisier version of its own half.
//!
//! ```sh
//! cargo run --release -- run pipelines/quick.yaml
//! cargo run --release --example evaluate_checkpoint -- pipelines/quick.yaml "base[half=B]"
//! ```
//!
//! Checkpoints are plain files in the cache (`pipe show FILE STAGE` prints where); in
//! Python, `safetensors.torch.load_file(".../model.safetensors")` reads the same tensors.

use std::path::PathBuf;

use pipe::config::load;
use pipe::data::{SplitMethod, SyntheticParams, split, synthetic};
use pipe::engine::plan::{Selection, StageState, plan_pipeline};
use pipe::nn::{Images, evaluate, load_checkpoint};
use pipe::store::Store;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let file = PathBuf::from(args.next().unwrap_or_else(|| "pipelines/quick.yaml".into()));
    let stage = args.next().unwrap_or_else(|| "base[half=B]".into());
    let pipeline = load(&file, &[], pipe::kinds::registry())?;
    let store = Store::open(&PathBuf::from("cache"))?;

    // Find the stage's entry: it must be in the cache with the file's current settings.
    let plan = plan_pipeline(&pipeline, &store, &Selection::new(&pipeline, std::slice::from_ref(&stage), &[])?, None)?;
    let i = pipeline.index_of(&stage).ok_or("no such stage")?;
    let Some(StageState::Fresh { manifest }) = plan.stages[i].as_ref().map(|s| &s.state) else {
        return Err(format!("`{stage}` is not in the cache; run the pipeline first").into());
    };
    let dir = tempfile::tempdir()?;
    store.link(&manifest.outputs["network"].content, &dir.path().join("network"))?;
    let (cfg, params) = load_checkpoint(&dir.path().join("network"))?;
    println!("{stage}: {} layers + classifier of {} classes, input {:?}", cfg.layers.len(), cfg.classes, cfg.input);

    // Other data with the same classes: quick.yaml's dataset, drawn with more noise.
    let noisy = synthetic(&SyntheticParams {
        classes: 6,
        groups: 2,
        image: [1, 16, 16],
        per_class: 60,
        test_per_class: 20,
        noise: 0.3,
        ..SyntheticParams::default()
    })?;
    let (_, b) = split(&noisy, &SplitMethod::Random { seed: 0 }, None, 0.2, 0)?;
    let images = Images { pixels: &b.test.pixels, labels: &b.test.labels, shape: b.shape };
    let m = evaluate(&cfg, &params, &images)?;
    println!("on noisier images of its classes: top-1 {:.1}% over {} images", m.top1 * 100.0, m.n);
    Ok(())
}
