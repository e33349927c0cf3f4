"""Overhead of capturing every block's output against the bare HF forward, side by side.

GPT-2 shaped model: 6 layers, d=512, 8 heads; batch 8 x 128 tokens; CPU unless --device.
Pairs (bare, capture) are timed alternately in one process; the figure is the median of the
per-pair ratios. Last line: ``capture/bare: R``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from auditlens import load_subject, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--position", default="all", help="reduction at hook time: all | last | mean")
    args = parser.parse_args()

    torch.manual_seed(0)
    config = GPT2Config(n_layer=6, n_embd=512, n_head=8, n_positions=128, vocab_size=8192)
    subject = load_subject(GPT2LMHeadModel(config), device=args.device, id="gpt2-6x512")
    inputs = subject.encode(torch.randint(0, 8192, (8, 128)).tolist())
    sites = [f"layer:{i}" for i in range(6)]
    ids, mask = inputs.input_ids.to(subject.device), inputs.attention_mask.to(subject.device)

    def bare():
        with torch.inference_mode():
            subject.model(input_ids=ids, attention_mask=mask)

    def captured():
        run(subject, inputs, sites=sites, position=args.position, batch_size=8, cache=None)

    def timed(fn) -> float:
        if subject.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if subject.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for _ in range(3):  # warm-up
        bare(), captured()
    pairs = [(timed(bare), timed(captured)) for _ in range(args.repeats)]
    bare_s = statistics.median(b for b, _ in pairs)
    capture_s = statistics.median(c for _, c in pairs)
    ratio = statistics.median(c / b for b, c in pairs)
    print(f"torch {torch.__version__}, device {subject.device}, threads {torch.get_num_threads()}, "
          f"position={args.position}, {args.repeats} pairs")
    print(f"bare forward:        median {bare_s * 1000:8.1f} ms")
    print(f"capture 6 blocks:    median {capture_s * 1000:8.1f} ms")
    print(f"capture/bare: {ratio:.3f}")


if __name__ == "__main__":
    main()
