//! Training and inference speed of the reference network of the CPU speed issue (#5),
//! through the public API only, so it measures what a pipeline stage gets:
//!
//! input -> conv 3x3 32 + ReLU -> conv 3x3 32 + ReLU -> max-pool 2 -> conv 3x3 64 + ReLU
//! -> conv 3x3 64 + ReLU -> max-pool 2 -> fc 256 + ReLU -> fc 256 + ReLU -> fc 10,
//! batch 128, SGD with momentum, on generated images.
//!
//! For each input shape (1x28x28, 3x32x32) and thread count (1, 2): one warm-up epoch
//! on `--warmup` images (not timed), one timed epoch on `--images` images, then
//! `evaluate` over the same images. Prints training and inference images/s, the
//! GFLOP/s they amount to (multiply-adds counted as 2 FLOPs; training = forward + weight
//! gradient + input gradient, the first layer's input gradient excluded), and peak RSS
//! (VmHWM, which covers the whole process: run one configuration per process with
//! `--input` and `--threads` for a clean figure).
//!
//! `benches/train_torch.py` runs the same measurement with PyTorch.
//!
//! Usage: cargo bench --bench train -- [--input 1x28x28|3x32x32]
//!        [--threads N] [--images N] [--warmup N] [--frozen K] [--repeat N]

use std::time::Instant;

use pipe::nn::{
    Augment, Backend, EpochLog, Images, LayerSpec, NetConfig, Schedule, TrainConfig, TrainHooks, evaluate, init, train,
};
use pipe::rng::Rng;

const BATCH: usize = 128;
const LAYERS: [&str; 6] = ["conv 32 3", "conv 32 3 pool", "conv 64 3", "conv 64 3 pool", "fc 256", "fc 256"];

struct Args {
    inputs: Vec<[usize; 3]>,
    threads: Vec<usize>,
    images: usize,
    warmup: usize,
    frozen: usize,
    repeat: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        inputs: vec![[1, 28, 28], [3, 32, 32]],
        threads: vec![1, 2],
        images: 6400,
        warmup: 2048,
        frozen: 0,
        repeat: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--bench" {
            continue; // what `cargo bench` passes to every benchmark
        }
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let number = || value.parse::<usize>().unwrap_or_else(|_| panic!("bad {flag} `{value}`"));
        match flag.as_str() {
            "--input" => {
                let dims: Vec<usize> = value.split('x').map(|d| d.parse().expect("input as CxHxW")).collect();
                args.inputs = vec![[dims[0], dims[1], dims[2]]];
            }
            "--threads" => args.threads = vec![number()],
            "--images" => args.images = number(),
            "--warmup" => args.warmup = number(),
            "--frozen" => args.frozen = number(),
            "--repeat" => args.repeat = number(),
            _ => panic!("unknown flag {flag}"),
        }
    }
    args
}

fn net(input: [usize; 3]) -> NetConfig {
    NetConfig { input, layers: LAYERS.iter().map(|l| LayerSpec::parse(l).unwrap()).collect(), classes: 10 }
}

/// Multiply-adds x 2 of one image's forward pass, per layer (the classifier last).
fn forward_flops(cfg: &NetConfig) -> Vec<f64> {
    let mut prev = cfg.input;
    let mut flops = Vec::new();
    for (layer, shape) in cfg.layers.iter().zip(cfg.shapes()) {
        flops.push(match *layer {
            LayerSpec::Conv { out, kernel, stride, pad, .. } => {
                let conv = |size: usize| (size + 2 * pad - kernel) / stride + 1;
                2.0 * (out * prev[0] * kernel * kernel * conv(prev[1]) * conv(prev[2])) as f64
            }
            LayerSpec::Fc { out, .. } => 2.0 * (out * prev.iter().product::<usize>()) as f64,
        });
        prev = shape;
    }
    flops.push(2.0 * (cfg.classes * prev.iter().product::<usize>()) as f64);
    flops
}

/// Training FLOPs per image: forward of every layer; weight and input gradients of
/// the trained ones, except the input gradient of the lowest trained layer.
fn train_flops(fwd: &[f64], frozen: usize) -> f64 {
    let forward: f64 = fwd.iter().sum();
    let trained = &fwd[frozen..];
    forward + trained.iter().sum::<f64>() + trained[1..].iter().sum::<f64>()
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

struct Owned {
    pixels: Vec<u8>,
    labels: Vec<u16>,
    shape: [usize; 3],
}

impl Owned {
    fn generate(n: usize, shape: [usize; 3], seed: u64) -> Owned {
        let mut rng = Rng::new(seed);
        let len: usize = shape.iter().product();
        Owned {
            pixels: (0..n * len).map(|_| rng.below(256) as u8).collect(),
            labels: (0..n).map(|_| rng.below(10) as u16).collect(),
            shape,
        }
    }

    fn images(&self) -> Images<'_> {
        Images { pixels: &self.pixels, labels: &self.labels, shape: self.shape }
    }
}

fn train_config(frozen: usize) -> TrainConfig {
    TrainConfig {
        epochs: 1,
        batch: BATCH,
        lr: 0.01,
        momentum: 0.9,
        weight_decay: 5e-4,
        schedule: Schedule::Constant,
        augment: Augment::NONE,
        seed: 1,
        frozen,
        device: Backend::Cpu,
    }
}

// The allocator of the `pipe` binary, so that this measures what a stage gets.
#[global_allocator]
static GLOBAL: pipe::alloc::MiMalloc = pipe::alloc::MiMalloc;

fn main() {
    pipe::alloc::keep_freed_memory();
    let args = parse_args();
    println!("input     threads  train img/s  GFLOP/s  infer img/s  GFLOP/s  peak RSS MB");
    for &input in &args.inputs {
        let cfg = net(input);
        let fwd = forward_flops(&cfg);
        let (train_gflop, infer_gflop) = (train_flops(&fwd, args.frozen) / 1e9, fwd.iter().sum::<f64>() / 1e9);
        let warmup = Owned::generate(args.warmup, input, 1);
        let timed = Owned::generate(args.images, input, 2);
        let tc = train_config(args.frozen);
        for &threads in &args.threads {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            for _ in 0..args.repeat {
                let (train_ips, infer_ips) = pool.install(|| {
                    let hooks = &mut TrainHooks::default();
                    let (params, _) = train(&cfg, init(&cfg, 0), &warmup.images(), None, &tc, hooks).unwrap();
                    let (params, logs): (_, Vec<EpochLog>) =
                        train(&cfg, params, &timed.images(), None, &tc, hooks).unwrap();
                    let started = Instant::now();
                    let metrics = evaluate(&cfg, &params, &timed.images()).unwrap();
                    let infer = metrics.n as f64 / started.elapsed().as_secs_f64();
                    (logs[0].images_per_sec, infer)
                });
                println!(
                    "{:<9} {threads:>7}  {train_ips:>11.0}  {:>7.1}  {infer_ips:>11.0}  {:>7.1}  {:>11.0}",
                    format!("{}x{}x{}", input[0], input[1], input[2]),
                    train_ips * train_gflop,
                    infer_ips * infer_gflop,
                    peak_rss_mb(),
                );
            }
        }
    }
}
