#!/usr/bin/env python3
"""The notebooks' superposition training step in PyTorch, timed: the reference
for bench_train on the GPU machine.

Two random GPT-2 experts of one shape (HF GPT2LMHeadModel, eager attention,
frozen), a 1D α (B-spline control points and layer biases, clamped to
[0, 1]), an autoencoder at every layer (Linear -> GELU -> kernel-3 Conv1d over
the sequence), and the step SPEC §5 describes as the notebooks train it:
both experts' hidden states under no_grad as targets, the superposed forward
block by block with the teacher chain (the next block reads the blend; the
last reconstruction feeds the head), L = 3·Σ MSE + LM cross-entropy, AdamW
with one group for α (lr 2e-4) and one for the autoencoders (1e-4), gradient
clipping 1.0 per group. Random token ids, batch and length as bench_train.
Prints one line: "<tokens/s> tokens/s (...)".

    python3 bench/reference_train.py --shape gpt2-small --device cuda --precision bf16
"""
import argparse
import contextlib
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

from reference_superposed import AE1D, block_out  # the same autoencoder and block call


def bspline_basis(L, K, degree=3):
    """Clamped uniform B-spline basis evaluated at L points in [0, 1]: (L, K)."""
    inner = K - degree - 1
    knots = [0.0] * (degree + 1) + [(i + 1) / (inner + 1) for i in range(inner)] + [1.0] * (degree + 1)
    xs = [l / (L - 1) if L > 1 else 0.0 for l in range(L)]
    basis = torch.zeros(L, K)
    for row, x in enumerate(xs):
        x = min(x, 1.0 - 1e-9)
        b = [1.0 if knots[i] <= x < knots[i + 1] else 0.0 for i in range(len(knots) - 1)]
        for d in range(1, degree + 1):
            b = [
                ((x - knots[i]) / (knots[i + d] - knots[i]) * b[i] if knots[i + d] > knots[i] else 0.0)
                + ((knots[i + d + 1] - x) / (knots[i + d + 1] - knots[i + 1]) * b[i + 1]
                   if knots[i + d + 1] > knots[i + 1] else 0.0)
                for i in range(len(knots) - d - 1)
            ]
        basis[row] = torch.tensor(b[:K])
    return basis


class Alpha1D(nn.Module):
    def __init__(self, L, K=6):
        super().__init__()
        self.register_buffer("basis", bspline_basis(L, K))
        self.control_points = nn.Parameter(torch.full((K,), 0.5))
        self.layer_biases = nn.Parameter(torch.zeros(L))

    def forward(self):
        return torch.clamp(self.basis @ self.control_points + 0.1 * self.layer_biases, 0.0, 1.0)


def step(base, fine, alpha_module, aes, optimizer, groups, ids, labels, autocast):
    tb, tf = base.transformer, fine.transformer
    B, T = ids.shape
    with autocast():
        with torch.no_grad():
            hb = base(ids, output_hidden_states=True).hidden_states
            hf = fine(ids, output_hidden_states=True).hidden_states
        alpha = alpha_module()
        pos = torch.arange(T, device=ids.device).unsqueeze(0)
        abar = alpha.mean()
        h = (1 - abar) * (tb.wte(ids) + tb.wpe(pos)) + abar * (tf.wte(ids) + tf.wpe(pos))
        mask = torch.full((T, T), torch.finfo(h.dtype).min, device=ids.device, dtype=h.dtype).triu(1).view(1, 1, T, T)
        y = labels.view(B, 1, 1).to(h.dtype)
        recon_loss = 0.0
        L = len(tb.h)
        for l in range(L):
            blended = (1 - alpha[l]) * block_out(tb.h[l], h, mask) + alpha[l] * block_out(tf.h[l], h, mask)
            recon = aes[l](blended)
            target = (1 - y) * hb[l + 1] + y * hf[l + 1]
            recon_loss = recon_loss + F.mse_loss(recon.float(), target.float())
            h = blended if l + 1 < L else recon
        logits = base.lm_head(tb.ln_f(h))
        lm = F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)).float(), ids[:, 1:].reshape(-1))
        loss = 3 * recon_loss + lm
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    for params in groups:
        torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    return loss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="gpt2-small", choices=["small", "gpt2-small"])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precision", default="f32", choices=["f32", "bf16"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--warm", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    shape = dict(n_layer=6, n_embd=384, n_head=6) if args.shape == "small" else {}
    config = GPT2Config(**shape)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    base = GPT2LMHeadModel(config).eval().to(args.device)
    fine = GPT2LMHeadModel(config).eval().to(args.device)
    for p in list(base.parameters()) + list(fine.parameters()):
        p.requires_grad_(False)
    alpha = Alpha1D(config.n_layer).to(args.device)
    aes = nn.ModuleList([AE1D(config.n_embd) for _ in range(config.n_layer)]).to(args.device)
    groups = [list(alpha.parameters()), list(aes.parameters())]
    optimizer = torch.optim.AdamW([{"params": groups[0], "lr": 2e-4}, {"params": groups[1], "lr": 1e-4}],
                                  weight_decay=0.01)
    if args.precision == "bf16":
        autocast = lambda: torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    else:
        autocast = contextlib.nullcontext
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randint(0, config.vocab_size, (args.batch, args.seq), generator=g).to(args.device),
                torch.randint(0, 2, (args.batch,), generator=g).to(args.device))
               for _ in range(args.warm + args.steps)]
    for ids, labels in batches[:args.warm]:
        step(base, fine, alpha, aes, optimizer, groups, ids, labels, autocast)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for ids, labels in batches[args.warm:]:
        loss = step(base, fine, alpha, aes, optimizer, groups, ids, labels, autocast)
    loss.item()
    seconds = time.perf_counter() - start
    print(f"{args.steps * args.batch * args.seq / seconds:.0f} tokens/s (notebook training step, {args.shape}, "
          f"{args.device}, {args.precision}, batch {args.batch}x{args.seq}, torch {torch.__version__})")


if __name__ == "__main__":
    main()
