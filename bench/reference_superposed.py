#!/usr/bin/env python3
"""The notebooks' superposed generation loop in PyTorch, timed: the reference
for bench_superposed on the GPU machine.

Two random GPT-2 experts of one shape (HF GPT2LMHeadModel blocks, eager
attention), a 1D α with an autoencoder at every layer (Linear -> GELU ->
kernel-3 Conv1d over the sequence), and the notebooks' way of generating:
every new token reruns the superposed forward pass over the whole prefix,
then takes the argmax. Same prompt length and new-token count as
bench_superposed. Prints one line: "<tokens/s> tokens/s (...)".

    python3 bench/reference_superposed.py --shape gpt2-small --device cuda --dtype f32
"""
import argparse
import time

import torch
import torch.nn as nn
from transformers import GPT2Config, GPT2LMHeadModel

PROMPT_TOKENS = 32
NEW_TOKENS = 64


class AE1D(nn.Module):
    def __init__(self, C):
        super().__init__()
        Z = int(0.75 * C)
        self.encoder = nn.Sequential(nn.Linear(C, Z), nn.GELU())
        self.conv = nn.Conv1d(Z, C, 3, padding=1)

    def forward(self, x):
        return self.conv(self.encoder(x).transpose(1, 2)).transpose(1, 2)


def block_out(block, h, mask):
    out = block(h, attention_mask=mask)
    return out[0] if isinstance(out, tuple) else out


@torch.no_grad()
def superposed_logits(base, fine, alpha, aes, ids):
    tb, tf = base.transformer, fine.transformer
    T = ids.shape[1]
    pos = torch.arange(T, device=ids.device).unsqueeze(0)
    abar = alpha.mean()
    h = (1 - abar) * (tb.wte(ids) + tb.wpe(pos)) + abar * (tf.wte(ids) + tf.wpe(pos))
    mask = torch.full((T, T), torch.finfo(h.dtype).min, device=ids.device, dtype=h.dtype).triu(1).view(1, 1, T, T)
    for l in range(len(tb.h)):
        blended = (1 - alpha[l]) * block_out(tb.h[l], h, mask) + alpha[l] * block_out(tf.h[l], h, mask)
        h = aes[l](blended)
    return base.lm_head(tb.ln_f(h))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="gpt2-small", choices=["small", "gpt2-small"])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    dtype = torch.float32 if args.dtype == "f32" else torch.bfloat16
    shape = dict(n_layer=6, n_embd=384, n_head=6) if args.shape == "small" else {}
    config = GPT2Config(**shape)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    base = GPT2LMHeadModel(config).eval().to(args.device, dtype)
    fine = GPT2LMHeadModel(config).eval().to(args.device, dtype)
    aes = nn.ModuleList([AE1D(config.n_embd) for _ in range(config.n_layer)]).eval().to(args.device, dtype)
    alpha = torch.rand(config.n_layer, device=args.device, dtype=dtype)
    prompt = [(i * 7919) % 50257 for i in range(PROMPT_TOKENS)]
    best = 0.0
    for _ in range(args.repeats):
        seq = torch.tensor([prompt], device=args.device)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(NEW_TOKENS):
            token = superposed_logits(base, fine, alpha, aes, seq)[0, -1].argmax()
            seq = torch.cat([seq, token.view(1, 1)], dim=1)
        token.item()
        best = max(best, NEW_TOKENS / (time.perf_counter() - start))
    print(f"{best:.2f} tokens/s (notebook loop, {args.shape}, {args.device}, {args.dtype}, torch {torch.__version__})")


if __name__ == "__main__":
    main()
