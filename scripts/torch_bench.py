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
    # (c) The whole LGRL synthesizer at batch 64 (x 5 pairs) on programs of 20 tokens.
    enc = IoEncoder()
    emb = nn.Embedding(43, 256)
    dec = nn.LSTM(768, 256, num_layers=2)
    out_layer = nn.Linear(256, 43, bias=False)
    params = [p for m in (enc, emb, dec, out_layer) for p in m.parameters()]
    opt = torch.optim.SGD(params, lr=0.1)
    tokens = torch.randint(4, 43, (64, 20))
    steps_in = torch.cat([torch.zeros(64, 1, dtype=torch.long), tokens], dim=1)  # <S> t1..t20
    targets = torch.cat([tokens, torch.ones(64, 1, dtype=torch.long)], dim=1)      # t1..t20 </S>

    def synth_step():
        opt.zero_grad()
        io = enc(inp, out)                                          # [320, 512]
        x = emb(steps_in.repeat_interleave(5, dim=0)).transpose(0, 1)  # [21, 320, 256]
        x = torch.cat([x, io.unsqueeze(0).expand(21, 320, 512)], dim=2)
        y, _ = dec(x)                                               # [21, 320, 256]
        pooled, _ = y.view(21, 64, 5, 256).max(dim=2)
        logits = out_layer(pooled)                                  # [21, 64, 43]
        F.cross_entropy(logits.reshape(-1, 43), targets.T.reshape(-1)).backward()
        opt.step()

    best, median = timed(synth_step, 1, args.steps)
    report["synthesizer"] = {"batch": 64, "tokens": 20, "best_s": best, "median_s": median}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
