"""Peak memory of capturing every layer of a d=384 encoder over 20,000 inputs at position="last".

Two models, each measured in a fresh process: the real MiniLM (``fixture:minilm``, 6 layers) and a
12-layer BERT of the same width (random weights: memory does not depend on their values). Every
block output plus ``embed`` is captured (7 and 13 sites), with no cache, so the figure is the
capture's own: batches stream through the model and are reduced at hook time into preallocated
[n, d] tensors. A sampler thread reads the process's resident memory every 2 ms.

    python bench/memory.py [--n 20000] [--batch-size 64]

Per model: peak resident memory above what the process held just before the capture (model and
tokenized inputs loaded, one batch run), the size of the result tensors, and their ratio. Last line:
``memory: peak P MiB over a result of R MiB (ratio X) for the 12-layer model``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time

MODELS = ("minilm-l6", "bert-l12-d384")


def sentences(n: int) -> list[str]:
    nouns = ["dog", "cat", "teacher", "doctor", "child", "farmer", "singer", "pilot", "nurse", "lawyer"]
    verbs = ["sees", "helps", "calls", "follows", "greets", "thanks", "meets", "waits for"]
    tails = ["", " today", " in the park", " near the old river at dusk", " again and again, as always"]
    return [f"the {nouns[i % 10]} {verbs[(i // 10) % 8]} the {nouns[(i // 80) % 10]}{tails[(i // 800) % 5]} {i}"
            for i in range(n)]


def load(name: str):
    from auditlens import load_subject

    minilm = load_subject("fixture:minilm")
    if name == "minilm-l6":
        return minilm
    from transformers import BertConfig, BertModel

    config = BertConfig(hidden_size=384, num_hidden_layers=12, num_attention_heads=12, intermediate_size=1536,
                        vocab_size=minilm.model.config.vocab_size)
    return load_subject(BertModel(config), tokenizer=minilm.tokenizer, kind="encoder", id=name)


class PeakSampler:
    """The highest resident set size seen while the block runs (psutil, every ``interval`` s)."""

    def __init__(self, interval: float = 0.002):
        import psutil

        self.process, self.interval = psutil.Process(), interval
        self.peak = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self):
        self.peak = self.process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def measure(name: str, n: int, batch_size: int) -> dict:
    import gc

    import psutil

    from auditlens import capture

    subject = load(name)
    inputs = subject.encode(sentences(n))
    sites = ["embed", *(f"layer:{i}" for i in range(subject.n_layers))]
    # one batch first: weights loaded from safetensors are memory-mapped and become resident only when
    # a forward pass touches them, which is the model's memory, not the capture's
    capture(subject, inputs.select(range(batch_size)), sites, position="last", cache=None)
    passes = subject.forward_passes
    gc.collect()
    before = psutil.Process().memory_info().rss
    started = time.perf_counter()
    with PeakSampler() as sampler:
        result = capture(subject, inputs, sites, position="last", batch_size=batch_size, cache=None)
    seconds = time.perf_counter() - started
    result_bytes = sum(t.numel() * t.element_size() for t in result.values())
    return {"model": name, "layers": subject.n_layers, "sites": len(sites), "n": n,
            "tokens": int(inputs.input_ids.shape[1]), "seconds": seconds, "peak_above_start": sampler.peak - before,
            "result_bytes": result_bytes, "forward_passes": subject.forward_passes - passes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--one", choices=MODELS, help=argparse.SUPPRESS)  # internal: measure in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.n, args.batch_size)))
        return
    mib = 2**20
    rows = []
    for name in MODELS:  # a fresh process each: peaks of one must not hide in the other's
        out = subprocess.run([sys.executable, __file__, "--one", name, "--n", str(args.n),
                              "--batch-size", str(args.batch_size)], capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"{name}: {out.stderr[-2000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'model':<16}{'sites':>6}{'inputs':>8}{'seconds':>9}{'peak MiB':>10}{'result MiB':>12}{'ratio':>7}")
    for r in rows:
        print(f"{r['model']:<16}{r['sites']:>6}{r['n']:>8}{r['seconds']:>9.1f}{r['peak_above_start'] / mib:>10.1f}"
              f"{r['result_bytes'] / mib:>12.1f}{r['peak_above_start'] / r['result_bytes']:>7.2f}")
    last = rows[-1]
    print(f"memory: peak {last['peak_above_start'] / mib:.1f} MiB over a result of {last['result_bytes'] / mib:.1f} MiB "
          f"(ratio {last['peak_above_start'] / last['result_bytes']:.2f}) for the {last['layers']}-layer model")


if __name__ == "__main__":
    main()
