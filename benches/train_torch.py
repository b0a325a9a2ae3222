"""The PyTorch side of benches/train.rs: the same network, batch, optimizer and
measurement, so both can be run side by side on one machine.

input -> conv 3x3 32 + ReLU -> conv 3x3 32 + ReLU -> max-pool 2 -> conv 3x3 64 + ReLU
-> conv 3x3 64 + ReLU -> max-pool 2 -> fc 256 + ReLU -> fc 256 + ReLU -> fc 10,
padding 1, batch 128, SGD lr 0.01 momentum 0.9 weight decay 5e-4, generated images.

For each input shape and thread count: one warm-up epoch on --warmup images (not
timed), one timed epoch on --images images (conversion of the u8 batch to normalised
f32 included, as in the Rust side), then inference over the same images in batches of
256. Prints training and inference images/s, GFLOP/s (multiply-adds x 2; training =
forward + weight gradient + input gradient, the first layer's input gradient
excluded) and peak RSS (ru_maxrss, whole process).

Usage: python benches/train_torch.py [--input 1x28x28] [--threads 1] [--images N]
       [--warmup N] [--repeat N]
"""

import argparse
import resource
import time

import torch
from torch import nn

BATCH = 128
EVAL_BATCH = 256


def net(c, h, w):
    flat = 64 * (h // 4) * (w // 4)
    return nn.Sequential(
        nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(flat, 256), nn.ReLU(),
        nn.Linear(256, 256), nn.ReLU(),
        nn.Linear(256, 10),
    )


def forward_flops(model, c, h, w):
    """Per-layer forward FLOPs of one image (multiply-adds x 2), lowest layer first."""
    flops = []
    x = torch.zeros(1, c, h, w)
    for layer in model:
        y = layer(x)
        if isinstance(layer, nn.Conv2d):
            k = layer.kernel_size[0] * layer.kernel_size[1] * layer.in_channels
            flops.append(2.0 * k * y.numel())
        elif isinstance(layer, nn.Linear):
            flops.append(2.0 * layer.in_features * layer.out_features)
        x = y
    return flops


def generate(n, shape, seed):
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    return pixels, labels


def to_input(pixels):
    # Same fixed normalisation as the Rust side: (p / 255 - 0.5) / 0.25.
    return (pixels.float() / 255.0 - 0.5) / 0.25


def epoch(model, opt, pixels, labels):
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(len(labels))
    start = time.perf_counter()
    for i in range(0, len(labels), BATCH):
        idx = order[i:i + BATCH]
        x, y = to_input(pixels[idx]), labels[idx]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    return len(labels) / (time.perf_counter() - start)


def infer(model, pixels):
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(pixels), EVAL_BATCH):
            model(to_input(pixels[i:i + EVAL_BATCH])).argmax(1)
    return len(pixels) / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--input", action="append")
    p.add_argument("--threads", type=int, action="append")
    p.add_argument("--images", type=int, default=6400)
    p.add_argument("--warmup", type=int, default=2048)
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args()
    inputs = args.input or ["1x28x28", "3x32x32"]
    threads = args.threads or [1, 2]
    print(f"torch {torch.__version__}")
    print("input     threads  train img/s  GFLOP/s  infer img/s  GFLOP/s  peak RSS MB")
    for text in inputs:
        c, h, w = (int(d) for d in text.split("x"))
        warm = generate(args.warmup, (c, h, w), 1)
        timed = generate(args.images, (c, h, w), 2)
        for t in threads:
            torch.set_num_threads(t)
            for _ in range(args.repeat):
                torch.manual_seed(0)
                model = net(c, h, w)
                fwd = forward_flops(model, c, h, w)
                train_gflop = (sum(fwd) + sum(fwd) + sum(fwd[1:])) / 1e9
                opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
                epoch(model, opt, *warm)
                train_ips = epoch(model, opt, *timed)
                infer_ips = infer(model, timed[0])
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(f"{text:<9} {t:>7}  {train_ips:>11.0f}  {train_ips * train_gflop:>7.1f}  "
                      f"{infer_ips:>11.0f}  {infer_ips * sum(fwd) / 1e9:>7.1f}  {rss:>11.0f}")


if __name__ == "__main__":
    main()
