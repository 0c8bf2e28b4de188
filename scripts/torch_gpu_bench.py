#!/usr/bin/env python3
"""PyTorch side of the training-throughput benchmark (BENCHMARKS.md, `examples/train_throughput.rs`):
optimizer steps per second of SED's models at the paper's sizes (docs: karel-reference.md §7) on
the same device, with the batch shapes the Rust side reports (mean decoder steps, source tokens,
edit ops, states per trace), as fixed shapes. Also the IO encoder's 64→64 convolution alone, in
TFLOP/s. Times with CUDA events (median of the timed steps after warm-up); TF32 is off unless
--tf32, so that both sides compute in f32.

    python3 scripts/torch_gpu_bench.py --device cuda --batch 64,128 \
        --decoder-steps 17 --source-tokens 20 --edit-ops 20 --states 3

Prints one JSON object per measurement.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PAIRS = 5
TOKENS = 43
OPS = 90


class IoEncoder(nn.Module):
    """IOEmbed: per IO pair, 512 features."""

    def __init__(self):
        super().__init__()
        self.input_encoder = nn.Conv2d(15, 32, 3, padding=1)
        self.output_encoder = nn.Conv2d(15, 32, 3, padding=1)

        def block():
            return nn.Sequential(*[m for _ in range(3) for m in (nn.Conv2d(64, 64, 3, padding=1), nn.ReLU())])

        self.block_1, self.block_2 = block(), block()
        self.fc = nn.Linear(64 * 18 * 18, 512)

    def forward(self, inp, out):
        x = torch.cat([F.relu(self.input_encoder(inp)), F.relu(self.output_encoder(out))], dim=1)
        x = x + self.block_1(x)
        x = x + self.block_2(x)
        return self.fc(x.flatten(1))


class Synthesizer(nn.Module):
    """LGRL: IO encoder, a 2-layer LSTM per pair over [token ‖ IO embedding], max over pairs."""

    def __init__(self):
        super().__init__()
        self.encoder = IoEncoder()
        self.embedding = nn.Embedding(TOKENS, 256)
        self.decoder = nn.LSTM(768, 256, 2, batch_first=True)
        self.out = nn.Linear(256, TOKENS, bias=False)

    def forward(self, inp, out, tokens, targets):
        b, t = tokens.shape
        io = self.encoder(inp, out)  # [b·5, 512]
        x = self.embedding(tokens).repeat_interleave(PAIRS, 0)
        x = torch.cat([x, io[:, None, :].expand(-1, t, -1)], -1)
        y, _ = self.decoder(x)
        y = y.view(b, PAIRS, t, 256).max(1).values
        return F.cross_entropy(self.out(y).reshape(-1, TOKENS), targets.reshape(-1))


class TraceEmbed(nn.Module):
    """45-channel CNN over every trace state, 3 blocks of [BN, ReLU, conv, BN, ReLU, conv]."""

    def __init__(self):
        super().__init__()
        self.initial = nn.Conv2d(45, 64, 3, padding=1)
        layers = []
        for _ in range(3):
            layers += [nn.BatchNorm2d(64), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1),
                       nn.BatchNorm2d(64), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1)]
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(64 * 18 * 18, 256)

    def forward(self, grids):
        return self.fc(self.blocks(self.initial(grids)).flatten(1))


class Debugger(nn.Module):
    """The SED debugger: IOEmbed, optional TraceEmbed summed onto the tokens, a bidirectional
    program encoder, and an edit decoder per pair over [op ‖ memory at the pointer ‖ last token ‖
    IO embedding], max over pairs."""

    def __init__(self, trace):
        super().__init__()
        self.encoder = IoEncoder()
        self.trace = TraceEmbed() if trace else None
        self.code_embedding = nn.Embedding(TOKENS, 256)
        self.code = nn.LSTM(512 if trace else 256, 256, 2, batch_first=True, bidirectional=True)
        self.op_embedding = nn.Embedding(OPS, 256)
        self.token_embedding = nn.Embedding(TOKENS, 256)
        self.decoder = nn.LSTM(1536, 256, 2, batch_first=True)
        self.out = nn.Linear(256, OPS, bias=False)

    def forward(self, batch):
        inp, out, source = batch["inputs"], batch["outputs"], batch["source"]
        b, length = source.shape
        io = self.encoder(inp, out)  # [b·5, 512]
        x = self.code_embedding(source)
        if self.trace is not None:
            states = self.trace(batch["states"])  # [b·5·S, 256]
            # Each state's feature goes to its token (weight 1/5: the mean over the pairs).
            features = torch.zeros(b * length, 256, device=x.device).index_add_(
                0, batch["state_token"], states / PAIRS)
            x = torch.cat([features.view(b, length, 256), x], -1)
        memory, _ = self.code(x)  # [b, L, 512]
        ops = batch["prev_ops"]
        t = ops.shape[1]
        at = torch.gather(memory, 1, batch["pointers"][:, :, None].expand(-1, -1, 512))
        step = torch.cat([self.op_embedding(ops), at, self.token_embedding(batch["last"])], -1)
        step = step.repeat_interleave(PAIRS, 0)
        step = torch.cat([step, io[:, None, :].expand(-1, t, -1)], -1)
        y, _ = self.decoder(step)
        y = y.view(b, PAIRS, t, 256).max(1).values
        return F.cross_entropy(self.out(y).reshape(-1, OPS), batch["targets"].reshape(-1))


def grids(n, device, channels=15):
    return (torch.rand(n, channels, 18, 18, device=device) < 0.1).float()


def timed(device, step, warmup, steps):
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        times = []
        for _ in range(steps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1000)
        return statistics.median(times)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def trainer(model, loss_of):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step():
        opt.zero_grad(set_to_none=False)
        loss_of().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return step


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", default="64,128")
    p.add_argument("--decoder-steps", type=int, default=17)
    p.add_argument("--source-tokens", type=int, default=20)
    p.add_argument("--edit-ops", type=int, default=20)
    p.add_argument("--states", type=int, default=3, help="trace states per pair")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--tf32", action="store_true")
    p.add_argument("--only", choices=["synthesizer", "debugger", "conv"])
    a = p.parse_args()
    device = torch.device(a.device)
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.manual_seed(0)
    info = {"torch": torch.__version__, "device": str(device), "tf32": a.tf32}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    print(json.dumps(info), flush=True)
    for batch in [int(b) for b in a.batch.split(",")]:
        n = batch * PAIRS
        if a.only in (None, "synthesizer"):
            model = Synthesizer().to(device)
            inp, out = grids(n, device), grids(n, device)
            tokens = torch.randint(0, TOKENS, (batch, a.decoder_steps), device=device)
            targets = torch.randint(0, TOKENS, (batch, a.decoder_steps), device=device)
            seconds = timed(device, trainer(model, lambda: model(inp, out, tokens, targets)), a.warmup, a.steps)
            print(json.dumps({"model": "synthesizer", "batch": batch, "seconds": seconds,
                              "steps_per_s": 1 / seconds}), flush=True)
        if a.only in (None, "debugger"):
            for trace in (False, True):
                model = Debugger(trace).to(device)
                length, t, s = a.source_tokens, a.edit_ops, a.states
                data = {
                    "inputs": grids(n, device), "outputs": grids(n, device),
                    "source": torch.randint(0, TOKENS, (batch, length), device=device),
                    "prev_ops": torch.randint(0, OPS, (batch, t), device=device),
                    "last": torch.randint(0, TOKENS, (batch, t), device=device),
                    "pointers": torch.randint(0, length, (batch, t), device=device),
                    "targets": torch.randint(0, OPS, (batch, t), device=device),
                    "states": grids(n * s, device, 45),
                    "state_token": torch.randint(0, batch * length, (n * s,), device=device),
                }
                seconds = timed(device, trainer(model, lambda: model(data)), a.warmup, a.steps)
                print(json.dumps({"model": "debugger" if trace else "debugger, no TraceEmbed",
                                  "batch": batch, "seconds": seconds, "steps_per_s": 1 / seconds}),
                      flush=True)
        if a.only in (None, "conv"):
            conv = nn.Conv2d(64, 64, 3, padding=1).to(device)
            x = torch.randn(n, 64, 18, 18, device=device, requires_grad=True)
            dy = torch.randn(n, 64, 18, 18, device=device)
            flop = 2.0 * n * 324 * 64 * 64 * 9
            with torch.no_grad():
                forward = timed(device, lambda: conv(x), a.warmup, a.steps)
            y = conv(x)
            backward = timed(device, lambda: torch.autograd.grad(y, [x, conv.weight, conv.bias], dy, retain_graph=True),
                             a.warmup, a.steps)
            print(json.dumps({"model": "conv3x3 64→64", "batch": batch, "images": n,
                              "forward_tflops": flop / forward / 1e12,
                              "backward_tflops": 2 * flop / backward / 1e12}), flush=True)


if __name__ == "__main__":
    main()
