"""Capturing every block's output: auditlens against the bare forward and the engines people use.

GPT-2 shaped model (6 layers, d=512, 8 heads, random weights), batch 8 x 128 tokens, CPU unless
--device. In each round every contender runs once, in turn, so drift on a shared machine hits all
of them alike; figures are medians over rounds, ratios taken against the bare HF forward of the
same round.

- bare forward: the HF model, inference mode, nothing read;
- output_hidden_states: HF returning every hidden state;
- auditlens: ``run(sites=layer:0..5, position="all", cache=None)``, the full [n, t, d] per block;
- nnsight: ``NNsight(model).trace(...)`` saving each block's output;
- TransformerLens (4.x): ``run_with_cache`` of each ``hook_resid_post`` on a ``TransformerBridge``
  over a copy of the same HF model; the bridge forces eager attention, so its own bare forward is
  timed too.

nnsight and TransformerLens come with the ``bench`` extra (pip install 'auditlens[bench]'); a
missing one is skipped with a message. Last line:
``peers (x bare forward): auditlens A, output_hidden_states H, nnsight N, TransformerLens T``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from auditlens import load_subject, run

LAYERS, WIDTH, HEADS, VOCAB, TOKENS, BATCH = 6, 512, 8, 8192, 128, 8


def contenders(device: str) -> tuple[dict[str, Callable[[], object]], list[str]]:
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=LAYERS, n_embd=WIDTH, n_head=HEADS, n_positions=TOKENS,
                                       vocab_size=VOCAB, bos_token_id=0, eos_token_id=0))
    subject = load_subject(model, device=device, id="gpt2-6x512")
    inputs = subject.encode(torch.randint(0, VOCAB, (BATCH, TOKENS)).tolist())
    ids, mask = inputs.input_ids.to(subject.device), inputs.attention_mask.to(subject.device)
    sites = [f"layer:{i}" for i in range(LAYERS)]
    skipped: list[str] = []

    def bare():
        with torch.inference_mode():
            return subject.model(input_ids=ids, attention_mask=mask)

    def hidden_states():
        with torch.inference_mode():
            return subject.model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states

    def auditlens():
        return run(subject, inputs, sites=sites, position="all", batch_size=BATCH, cache=None).activations

    found = {"bare forward": bare, "output_hidden_states": hidden_states, "auditlens": auditlens}
    try:
        from nnsight import NNsight
    except ImportError as exc:
        skipped.append(f"nnsight: not installed ({exc}); pip install 'auditlens[bench]'")
    else:
        traced = NNsight(subject.model)
        tuple_out = isinstance(_block_output(subject.model, ids, mask), tuple)

        def nnsight():
            outs = []
            with torch.inference_mode(), traced.trace(input_ids=ids, attention_mask=mask):
                for i in range(LAYERS):
                    block = traced.transformer.h[i]
                    outs.append((block.output[0] if tuple_out else block.output).save())
            assert len(outs) == LAYERS and outs[-1].shape == (BATCH, TOKENS, WIDTH), "nnsight saved nothing"
            return outs

        found["nnsight"] = nnsight
    try:
        from transformer_lens.model_bridge import TransformerBridge
    except ImportError as exc:
        skipped.append(f"TransformerLens: not installed ({exc}); pip install 'auditlens[bench]'")
    else:
        bridge = _transformer_bridge(TransformerBridge, subject.model, str(subject.device))

        def lens_bare():
            with torch.inference_mode():
                return bridge(ids)

        def lens_cache():
            with torch.inference_mode():
                return bridge.run_with_cache(ids, names_filter=lambda name: name.endswith("hook_resid_post"))[1]

        found["TransformerLens forward"] = lens_bare
        found["TransformerLens"] = lens_cache
    return found, skipped


def _transformer_bridge(TransformerBridge, model, device: str):
    """TransformerLens 4's bridge over a copy of the same HF model (the bridge switches its model to
    eager attention, which must not slow the other contenders down)."""
    import copy
    import tempfile

    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    twin = copy.deepcopy(model)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]")))
    with tempfile.TemporaryDirectory() as directory:  # the bridge reads the config from a model directory
        twin.save_pretrained(directory)
        return TransformerBridge.boot_transformers(directory, hf_model=twin, tokenizer=tokenizer, device=device)


def _block_output(model, ids, mask):
    seen = []
    handle = model.transformer.h[0].register_forward_hook(lambda m, a, out: seen.append(out))
    try:
        with torch.inference_mode():
            model(input_ids=ids[:1], attention_mask=mask[:1])
    finally:
        handle.remove()
    return seen[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    found, skipped = contenders(args.device)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    def timed(fn) -> float:
        sync()
        start = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - start

    for _ in range(3):  # warm-up
        for fn in found.values():
            fn()
    rounds = [{name: timed(fn) for name, fn in found.items()} for _ in range(args.rounds)]
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
          f"{args.rounds} rounds, batch {BATCH} x {TOKENS} tokens, {LAYERS} blocks of d={WIDTH}")
    for line in skipped:
        print(f"skipped {line}")
    ratio = {name: statistics.median(r[name] / r["bare forward"] for r in rounds) for name in found}
    for name in found:
        print(f"{name:<26} median {statistics.median(r[name] for r in rounds) * 1000:8.1f} ms   "
              f"x bare {ratio[name]:.3f}")
    if "TransformerLens" in found:
        own = statistics.median(r["TransformerLens"] / r["TransformerLens forward"] for r in rounds)
        print(f"TransformerLens run_with_cache / its own forward: {own:.3f}")
    shown = ["auditlens", "output_hidden_states", "nnsight", "TransformerLens"]
    print("peers (x bare forward): " + ", ".join(f"{n} {ratio[n]:.3f}" if n in ratio else f"{n} skipped"
                                                 for n in shown))


if __name__ == "__main__":
    main()
