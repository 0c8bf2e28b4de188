#!/usr/bin/env python3
"""PyTorch side of the neural-engine benchmarks (BENCHMARKS.md): forward + backward + update of
(a) the IO encoder at batch 64 × 5 examples, (b) a 2-layer LSTM of hidden 256 over 20 steps at
batch 320 (input 768, as the synthesizer's decoder), on the CPU with the given thread count.
Prints JSON: seconds per step (best and median of the timed steps) and GFLOP/s.

    .venv-torch/bin/python scripts/torch_bench.py --threads 2
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class IoEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.input_encoder = nn.Conv2d(15, 32, 3, padding=1)
        self.output_encoder = nn.Conv2d(15, 32, 3, padding=1)
        block = lambda: nn.Sequential(*[m for _ in range(3) for m in (nn.Conv2d(64, 64, 3, padding=1), nn.ReLU())])
        self.block_1, self.block_2 = block(), block()
        self.fc = nn.Linear(64 * 18 * 18, 512)

    def forward(self, inp, out):
        x = torch.cat([F.relu(self.input_encoder(inp)), F.relu(self.output_encoder(out))], dim=1)
        x = x + self.block_1(x)
        x = x + self.block_2(x)
        return self.fc(x.flatten(1))


def timed(step, warmup, steps):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def io_encoder_flops(n):
    # Forward, weight and input gradients (3x the forward multiply-adds), minus the input
    # gradients of the first convolutions (their inputs are data); 2 FLOP per multiply-add.
    first = 2 * (15 * 9 * 32 * 324)
    per = 3 * (first + 6 * (64 * 9 * 64 * 324) + 64 * 324 * 512) - first
    return 2 * per * n


def lstm_flops(batch, steps, inputs, hidden, layers):
    per_step = sum((inputs if l == 0 else hidden) * 4 * hidden + hidden * 4 * hidden for l in range(layers))
    return 2 * (3 * per_step - inputs * 4 * hidden) * batch * steps


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    report = {"torch": torch.__version__, "threads": torch.get_num_threads()}

    enc = IoEncoder()
    opt = torch.optim.SGD(enc.parameters(), lr=0.1)
    inp = (torch.rand(320, 15, 18, 18) < 0.1).float()
    out = (torch.rand(320, 15, 18, 18) < 0.1).float()
    r = torch.randn(320, 512)

    def encoder_step():
        opt.zero_grad()
        (enc(inp, out) * r).sum().backward()
        opt.step()

    best, median = timed(encoder_step, 1, args.steps)
    report["io_encoder"] = {"batch": 320, "best_s": best, "median_s": median, "gflops": io_encoder_flops(320) / best / 1e9}

    lstm = nn.LSTM(768, 256, num_layers=2)
    opt = torch.optim.SGD(lstm.parameters(), lr=0.1)
    x = torch.randn(20, 320, 768)
    r = torch.randn(20, 320, 256)

    def lstm_step():
        opt.zero_grad()
        y, _ = lstm(x)
        (y * r).sum().backward()
        opt.step()

    best, median = timed(lstm_step, 1, args.steps)
    report["lstm"] = {"batch": 320, "steps": 20, "best_s": best, "median_s": median,
                      "gflops": lstm_flops(320, 20, 768, 256, 2) / best / 1e9}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
