#!/usr/bin/env python3
"""Writes the PyTorch parity fixtures of the neural engine into tests/data/torch/ (run by hand,
not in CI):

    python3 -m venv .venv-torch && .venv-torch/bin/pip install torch safetensors numpy
    .venv-torch/bin/python scripts/torch_fixtures.py tests/data/torch

Each file holds the inputs, weights, outputs and gradients of one operation (or of the composite
IO encoder + LSTM stack) computed by PyTorch in float32; tests/it/torch_parity.rs recomputes them
with the CPU backend. Every gradient is of the scalar `sum(output * r)` for a stored random `r`.
"""
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(1234)


def rand(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def leaf(t):
    return t.detach().clone().requires_grad_(True)


def save(out, name, tensors):
    save_file({k: v.detach().contiguous().float() for k, v in tensors.items()}, f"{out}/{name}.safetensors")


def conv(out):
    x, w, b = leaf(rand(2, 5, 6, 7)), leaf(rand(4, 5, 3, 3)), leaf(rand(4))
    y = F.conv2d(x, w, b, padding=1)
    r = rand(*y.shape)
    (y * r).sum().backward()
    save(out, "conv", dict(x=x, weight=w, bias=b, y=y, r=r, dx=x.grad, dweight=w.grad, dbias=b.grad))


def conv_wide(out):
    # Channel counts at which the CPU backend convolves by Winograd's F(2x2, 3x3); odd sizes.
    x, w, b = leaf(rand(2, 40, 7, 6)), leaf(rand(36, 40, 3, 3)), leaf(rand(36))
    y = F.conv2d(x, w, b, padding=1)
    r = rand(*y.shape)
    (y * r).sum().backward()
    save(out, "conv_wide", dict(x=x, weight=w, bias=b, y=y, r=r, dx=x.grad, dweight=w.grad, dbias=b.grad))


def batchnorm(out):
    bn = nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.weight.copy_(rand(4))
        bn.bias.copy_(rand(4))
    x = leaf(rand(3, 4, 5, 5) * 2 + 1)
    y = bn(x)
    r = rand(*y.shape)
    (y * r).sum().backward()
    bn.eval()
    y_eval = bn(x)
    save(out, "batchnorm", dict(x=x, weight=bn.weight, bias=bn.bias, y=y, r=r, dx=x.grad,
                                dweight=bn.weight.grad, dbias=bn.bias.grad, running_mean=bn.running_mean,
                                running_var=bn.running_var, y_eval=y_eval))


def linear_embedding(out):
    lin = nn.Linear(7, 3)
    x = leaf(rand(5, 7))
    y = F.relu(lin(x))
    r = rand(*y.shape)
    (y * r).sum().backward()
    emb = nn.Embedding(6, 4)
    ids = torch.tensor([3, 0, 5, 3, 1])
    e = emb(ids)
    re = rand(*e.shape)
    (e * re).sum().backward()
    save(out, "linear", dict(x=x, weight=lin.weight, bias=lin.bias, y=y, r=r, dx=x.grad, dweight=lin.weight.grad,
                             dbias=lin.bias.grad, table=emb.weight, ids=ids.float(), e=e, re=re, dtable=emb.weight.grad))


def lstm(out):
    layer = nn.LSTM(6, 5, num_layers=2, bidirectional=True)
    lengths = torch.tensor([4, 2, 3])
    x = leaf(rand(4, 3, 6))
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    y, (h, c) = layer(packed)
    y, _ = nn.utils.rnn.pad_packed_sequence(y, total_length=4)
    r, rh, rc = rand(*y.shape), rand(*h.shape), rand(*c.shape)
    ((y * r).sum() + (h * rh).sum() + (c * rc).sum()).backward()
    tensors = dict(x=x, lengths=lengths.float(), y=y, h_n=h, c_n=c, r=r, rh=rh, rc=rc, dx=x.grad)
    for name, p in layer.named_parameters():
        tensors[name] = p
        tensors["d" + name] = p.grad
    save(out, "lstm", tensors)


def losses(out):
    logits = leaf(rand(6, 10))
    targets = torch.tensor([3, 7, -100, 0, 9, 2])
    mask = torch.ones(6, 10, dtype=torch.bool)
    mask[:, 5] = False
    mask[1, 8] = False
    masked = logits.masked_fill(~mask, float("-inf"))
    loss = F.cross_entropy(masked, targets, ignore_index=-100)
    loss.backward()
    g = leaf(rand(4 * 3, 5))
    m, _ = g.view(4, 3, 5).max(dim=1)
    rm = rand(*m.shape)
    (m * rm).sum().backward()
    ls = F.log_softmax(logits.detach(), dim=1)
    save(out, "losses", dict(logits=logits, targets=targets.float(), mask=mask.float(), loss=loss.reshape(1),
                             dlogits=logits.grad, g=g, max=m, rmax=rm, dg=g.grad, log_softmax=ls))


class IoEncoder(nn.Module):
    """SED's LGRLTaskEncoder with configurable widths."""

    def __init__(self, grid, conv, height, width, output):
        super().__init__()
        self.input_encoder = nn.Conv2d(grid, conv, 3, padding=1)
        self.output_encoder = nn.Conv2d(grid, conv, 3, padding=1)
        block = lambda: nn.Sequential(nn.Conv2d(2 * conv, 2 * conv, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(2 * conv, 2 * conv, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(2 * conv, 2 * conv, 3, padding=1), nn.ReLU())
        self.block_1 = block()
        self.block_2 = block()
        self.fc = nn.Linear(2 * conv * height * width, output)

    def forward(self, inp, out):
        x = torch.cat([F.relu(self.input_encoder(inp)), F.relu(self.output_encoder(out))], dim=1)
        x = x + self.block_1(x)
        x = x + self.block_2(x)
        return self.fc(x.flatten(1))


def composite(out):
    enc = IoEncoder(3, 2, 5, 5, 6)
    emb = nn.Embedding(7, 4)
    lstm = nn.LSTM(10, 5, num_layers=2)
    inp, outp = rand(4, 3, 5, 5), rand(4, 3, 5, 5)
    tokens = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0], [2, 2, 1, 6]]).T  # [T=4 steps, B=3 sequences]
    lengths = torch.tensor([4, 2, 3])
    io = enc(inp, outp)                                   # [4, 6]: one embedding per pair
    pooled, _ = io.view(1, 4, 6).max(dim=1)               # [1, 6]: max over the 4 pairs
    steps = torch.cat([emb(tokens), pooled.expand(4, 3, 6)], dim=2)  # [T, B, 10]
    packed = nn.utils.rnn.pack_padded_sequence(steps, lengths, enforce_sorted=False)
    y, (h, c) = lstm(packed)
    y, _ = nn.utils.rnn.pad_packed_sequence(y, total_length=4)
    r, rh = rand(*y.shape), rand(*h.shape)
    ((y * r).sum() + (h * rh).sum()).backward()
    tensors = dict(inputs=inp, outputs=outp, tokens=tokens.float(), lengths=lengths.float(), y=y, h_n=h, r=r, rh=rh,
                   io=io)
    for prefix, module in [("encoder", enc), ("embedding", emb), ("lstm", lstm)]:
        for name, p in module.named_parameters():
            tensors[f"{prefix}.{name}"] = p
            tensors[f"d{prefix}.{name}"] = p.grad
    save(out, "composite", tensors)


def optim(out):
    start, grads = rand(3, 4), [rand(3, 4) * 3 for _ in range(3)]
    tensors = dict(start=start)
    for i, g in enumerate(grads):
        tensors[f"grad{i}"] = g
    for name, make in [("adam", lambda p: torch.optim.Adam([p], lr=0.01)),
                       ("adamw", lambda p: torch.optim.AdamW([p], lr=0.01, weight_decay=0.1)),
                       ("sgd_clip", lambda p: torch.optim.SGD([p], lr=0.5))]:
        p = nn.Parameter(start.clone())
        opt = make(p)
        for g in grads:
            p.grad = g.clone()
            if name == "sgd_clip":
                torch.nn.utils.clip_grad_norm_([p], 1.0)
            opt.step()
        tensors[name] = p
    save(out, "optim", tensors)


def main():
    out = sys.argv[1]
    for make in (conv, batchnorm, linear_embedding, lstm, losses, composite, optim, conv_wide):
        make(out)


if __name__ == "__main__":
    main()
