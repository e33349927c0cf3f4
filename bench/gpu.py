"""Capture against the bare forward on three model shapes, and a probe sweep's forward / fit split
(issue 17). Random weights; every contender timed in turn each round; the figure is the median of
the per-round ratios to the bare forward (``model(input_ids, attention_mask)`` under inference mode).

    python bench/gpu.py                 # cuda when present: the issue's shapes
    python bench/gpu.py --device cpu    # smaller shapes, same contenders

Contenders: ``output_hidden_states``; auditlens ``all`` to the host, ``all`` kept on the device,
``last``, ``mean``; plain torch hooks that reduce ``last`` on the device and copy once at the end
(the reference a capture cannot beat); nnsight ``trace`` + ``.save()`` when installed. Then a
``layer:*`` probe sweep (concept and control task, 5 folds) on a Llama-shaped model.

Last line: ``gpu capture (x bare): all-device A, all-host H, last L, small-model S; probe sweep P s``
(A, H, L on the largest shape; S: ``last`` on the GPT-2 6x512 shape).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from auditlens import Concept, load_subject, probe, run

SHAPES = {  # name: (family, layers, width, heads, kv heads, dtype, batch, tokens), on a GPU / on the CPU
    "cuda": [("GPT-2 6x512", "gpt2", 6, 512, 8, 8, "float32", 8, 128),
             ("GPT-2 12x768", "gpt2", 12, 768, 12, 12, "float32", 32, 512),
             ("Llama 16x2048", "llama", 16, 2048, 16, 8, "bfloat16", 16, 512)],
    "cpu": [("GPT-2 6x512", "gpt2", 6, 512, 8, 8, "float32", 8, 128),
            ("GPT-2 12x768", "gpt2", 12, 768, 12, 12, "float32", 4, 128),
            ("Llama 8x512", "llama", 8, 512, 8, 4, "float32", 4, 128)],
}
SWEEP = {"cuda": (16, 2048, 2000, 64), "cpu": (4, 256, 400, 32)}  # layers, width, examples, tokens
VOCAB = 8192


def build(family: str, layers: int, width: int, heads: int, kv_heads: int, tokens: int):
    torch.manual_seed(0)
    if family == "gpt2":
        return GPT2LMHeadModel(GPT2Config(n_layer=layers, n_embd=width, n_head=heads, n_positions=tokens,
                                          vocab_size=VOCAB, bos_token_id=0, eos_token_id=0))
    return LlamaForCausalLM(LlamaConfig(num_hidden_layers=layers, hidden_size=width, num_attention_heads=heads,
                                        num_key_value_heads=kv_heads, intermediate_size=int(width * 8 / 3) // 64 * 64,
                                        vocab_size=VOCAB, max_position_embeddings=tokens))


def contenders(subject, inputs, layers: int) -> dict:
    model, sites = subject.model, [f"layer:{i}" for i in range(layers)]
    ids, mask = inputs.input_ids.to(subject.device), inputs.attention_mask.to(subject.device)
    batch = len(inputs)

    def bare():
        with torch.inference_mode():
            model(input_ids=ids, attention_mask=mask)

    def hidden_states():
        with torch.inference_mode():
            model(input_ids=ids, attention_mask=mask, output_hidden_states=True)

    def ours(position, keep=False):
        return lambda: run(subject, inputs, sites=sites, position=position, batch_size=batch, cache=None,
                           keep_on_device=keep)

    blocks = [model.get_submodule(subject.site(s).module_path) for s in sites]
    last = (mask * torch.arange(mask.shape[1], device=mask.device)).argmax(dim=1)
    rows = torch.arange(batch, device=mask.device)

    def plain_hooks():
        kept = []

        def hook(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            kept.append(hidden[rows, last])
        handles = [block.register_forward_hook(hook) for block in blocks]
        try:
            with torch.inference_mode():
                model(input_ids=ids, attention_mask=mask)
        finally:
            for handle in handles:
                handle.remove()
        return torch.stack(kept).float().cpu()

    found = {"bare": bare, "output_hidden_states": hidden_states, "all to host": ours("all"),
             "all on device": ours("all", keep=True), "last": ours("last"), "mean": ours("mean"),
             "hooks, last, one copy": plain_hooks}
    try:
        from nnsight import NNsight
    except ImportError:
        return found
    traced = NNsight(model)
    layers_of = traced.transformer.h if hasattr(model, "transformer") else traced.model.layers

    def nnsight():
        with torch.inference_mode(), traced.trace(input_ids=ids, attention_mask=mask):
            saved = [layers_of[i].output.save() for i in range(layers)]
        return saved

    found["nnsight all on device"] = nnsight
    return found


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def measure(shape, device: str, rounds: int) -> dict[str, float]:
    name, family, layers, width, heads, kv_heads, dtype, batch, tokens = shape
    model = build(family, layers, width, heads, kv_heads, tokens)
    subject = load_subject(model, device=device, dtype=dtype, id=name)
    inputs = subject.encode(torch.randint(0, VOCAB, (batch, tokens)).tolist())
    found = contenders(subject, inputs, layers)
    for fn in found.values():  # warm-up
        fn()
    times = {key: [] for key in found}
    for _ in range(rounds):
        for key, fn in found.items():
            times[key].append(timed(fn, subject.device))
    bare = times["bare"]
    ratios = {key: statistics.median(t / b for t, b in zip(values, bare)) for key, values in times.items()}
    print(f"\n{name} {dtype}, batch {batch}x{tokens}: bare {statistics.median(bare) * 1000:.1f} ms")
    for key, ratio in ratios.items():
        if key != "bare":
            print(f"  {key:24s} {ratio:6.3f}x")
    del subject, model
    return ratios


def probe_sweep(device: str) -> tuple[float, float, float]:
    layers, width, examples, tokens = SWEEP[device]
    model = build("llama", layers, width, max(1, width // 128), max(1, width // 256), tokens)
    subject = load_subject(model, device=device, dtype="bfloat16" if device == "cuda" else None, id="sweep")
    generator = torch.Generator().manual_seed(1)
    rows = torch.randint(4, VOCAB, (examples, tokens), generator=generator)
    rows[:, -1] = torch.randint(10, 20, (examples,), generator=generator)  # ten last tokens, two classes:
    labels = (rows[:, -1] < 15).long().tolist()  # linearly decodable where the last token is seen
    concept = Concept("last_token_low", examples=tuple(map(tuple, rows.tolist())), labels=tuple(labels))
    started = time.perf_counter()
    sweep = probe(subject, concept, at="layer:*")
    total = time.perf_counter() - started
    forward = sum(float(r.seconds_forward) for r in sweep.results)
    fit = sum(float(r.seconds_fit) for r in sweep.results)
    print(f"\nprobe sweep, Llama {layers}x{width}, {examples} examples of {tokens} tokens, {len(sweep.results)} "
          f"sites: {total:.1f} s (forward {forward:.1f} s, fitting {fit:.1f} s); best accuracy "
          f"{sweep.best_accuracy:.3f}")
    return total, forward, fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    kind = "cuda" if args.device.startswith("cuda") else "cpu"
    where = torch.cuda.get_device_name(args.device) if kind == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), {where}")
    results = [measure(shape, args.device, args.rounds) for shape in SHAPES[kind]]
    sweep_seconds, _, _ = probe_sweep(args.device)
    largest, small = results[-1], results[0]
    print(f"gpu capture (x bare): all-device {largest['all on device']:.2f}, all-host {largest['all to host']:.2f}, "
          f"last {largest['last']:.2f}, small-model {small['last']:.2f}; probe sweep {sweep_seconds:.1f} s")


if __name__ == "__main__":
    main()
