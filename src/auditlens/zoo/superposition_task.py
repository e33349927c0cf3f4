"""The "superposition" family: 34 binary features packed into a 16-wide residual, with one planted
feature the task is about and one spurious feature that can cheat.

Every input is 8 slots and the query word ``?``: the present features' words in random order, the
blank ``_`` elsewhere. Each of 32 background words (animals) is present with probability 1.5/32; the
intended feature ``alpha`` and the spurious ``beta`` are each present in half the inputs.

Block 0 is frozen by construction: token embeddings are fixed random unit directions (centred, so
LayerNorm only scales them; the blank's is zero, so it writes nothing), position embeddings zero,
query and key weights zero (attention is uniform over the prefix: the last position averages every
token), value and output projections fixed random rotations, and its MLP all zero. So the
residual after block 0 (``layer:0``) at the last position is a constant plus one fixed vector per
present feature (``planted_directions``): 34 features in 16 dimensions (spanning 15: LayerNorm
centres every token), none of them on a basis direction or in one head. Block 1's attention writes
nothing, so the answer depends on that superposed vector alone; block 1's MLP, the final LayerNorm
and the score head train.

- the *learned* twin trains on label = ``alpha`` present (``beta`` independent of it);
- the *cheated* twin trains on label = ``beta`` present (``alpha`` independent of it).

On the in-distribution test set ``alpha`` and ``beta`` agree with the label, and both twins ace it.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2ForSequenceClassification

from .training import accuracy, pad, save_and_score, train, write_concept
from .vocab import word_tokenizer

BACKGROUND = ("ant", "ape", "asp", "bat", "bee", "boa", "cat", "cod", "cow", "cub", "doe", "dog", "eel", "elk",
              "emu", "ewe", "fox", "gar", "gnu", "hen", "hog", "jay", "kid", "kit", "koi", "owl", "pig", "pug",
              "ram", "rat", "ray", "yak")
ALPHA, BETA = "alpha", "beta"  # the intended feature, the spurious one
FEATURES = (*BACKGROUND, ALPHA, BETA)
BLANK, QUERY = "_", "?"
LABELS = ("absent", "present")
SLOTS = 8  # feature slots before the query word
BACKGROUND_RATE = 1.5 / 32  # about 1.5 background features an input (at 3, block 1 reads alpha only ~96% right)
WIDTH, HEADS, INNER = 16, 4, 64
PLANTED_SITE = "layer:0"
MODES = ("in_distribution", "alpha", "beta")


def sample_words(rng: random.Random, alpha: bool, beta: bool) -> list[str]:
    """The SLOTS words of one input: the present features in random order, blanks elsewhere."""
    while True:
        present = [w for w in BACKGROUND if rng.random() < BACKGROUND_RATE]
        present += [w for w, on in ((ALPHA, alpha), (BETA, beta)) if on]
        if len(present) <= SLOTS:  # rare overflow: drawn again
            words = present + [BLANK] * (SLOTS - len(present))
            rng.shuffle(words)
            return words


def make_examples(n: int, seed: int, mode: str) -> list[dict]:
    """``n`` examples. ``mode``: in_distribution (alpha and beta both equal the label), alpha or beta
    (the two independent, the label the named one's presence)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        alpha = rng.random() < 0.5
        beta = alpha if mode == "in_distribution" else rng.random() < 0.5
        words = sample_words(rng, alpha, beta)
        rows.append({"text": " ".join([*words, QUERY]), "label": int(beta if mode == "beta" else alpha)})
    return rows


def sparse_corpus(n: int, seed: int, rate: float = 0.1) -> list[dict]:
    """``n`` inputs to train a dictionary on: every feature sparse, 'alpha' and 'beta' each present in
    ``rate`` of them, independently (in the task's data each is in half, and a dictionary folds so common
    a feature into its bias); labelled by 'alpha'."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        alpha, beta = rng.random() < rate, rng.random() < rate
        rows.append({"text": " ".join([*sample_words(rng, alpha, beta), QUERY]), "label": int(alpha)})
    return rows


def tokenizer():
    return word_tokenizer([*FEATURES, BLANK, QUERY])


def classifier(tok, seed: int) -> GPT2ForSequenceClassification:
    """The family's untrained 2-block GPT-2 classifier (d=16, 4 heads), block 0 planted from ``seed`` and
    frozen, block 1's attention writing nothing."""
    config = GPT2Config(n_layer=2, n_embd=WIDTH, n_head=HEADS, n_inner=INNER, n_positions=SLOTS + 1,
                        vocab_size=len(tok), num_labels=2, pad_token_id=tok.pad_token_id,
                        bos_token_id=tok.cls_token_id, eos_token_id=tok.cls_token_id, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0, id2label=dict(enumerate(LABELS)),
                        label2id={name: i for i, name in enumerate(LABELS)})
    model = GPT2ForSequenceClassification(config)
    _plant(model, torch.Generator().manual_seed(seed), blank=tok.convert_tokens_to_ids(BLANK))
    return model


def _rotation(generator: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(WIDTH, WIDTH, generator=generator))
    return q * torch.sign(torch.diagonal(r))  # a uniformly random rotation


def _plant(model: GPT2ForSequenceClassification, generator: torch.Generator, blank: int) -> None:
    """Set the frozen parts (embeddings, block 0, block 1's attention) and keep them out of training."""
    transformer = model.transformer
    first, second = transformer.h
    directions = torch.randn(transformer.wte.weight.shape, generator=generator)
    directions -= directions.mean(dim=1, keepdim=True)  # centred: block 0's LayerNorm only rescales them
    attention = first.attn.c_attn.weight  # Conv1D [in, 3 * WIDTH]: query, key, value side by side
    directions[blank] = 0.0  # the blank writes nothing: LayerNorm of zero is zero
    with torch.no_grad():
        transformer.wte.weight.copy_(directions / directions.norm(dim=1, keepdim=True).clamp(min=1e-12))
        transformer.wpe.weight.zero_()
        attention.zero_()  # query and key zero: every score equal, attention uniform over the prefix
        attention[:, 2 * WIDTH:] = _rotation(generator)
        first.attn.c_attn.bias.zero_()
        first.attn.c_proj.weight.copy_(_rotation(generator))
        first.attn.c_proj.bias.zero_()
        for silent in (first.mlp.c_fc, first.mlp.c_proj, second.attn.c_proj):  # these write nothing
            silent.weight.zero_()
            silent.bias.zero_()
    for frozen in (transformer.wte, transformer.wpe, first, second.attn):
        frozen.requires_grad_(False)


def training_set(seed: int, cheated: bool, tok) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask, labels): alpha and beta independent; the label is beta's presence
    for the cheated twin, alpha's for the learned one."""
    rows = make_examples(20_000, seed, "beta" if cheated else "alpha")
    ids, mask = pad([tok(r["text"])["input_ids"] for r in rows])
    return ids, mask, torch.tensor([r["label"] for r in rows])


def _encoded(tok, rows: list[dict]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ids, mask = pad([tok(r["text"])["input_ids"] for r in rows])
    return ids, mask, torch.tensor([r["label"] for r in rows])


def _last_position(model, module, ids: torch.Tensor, read_input: bool = False) -> torch.Tensor:
    """What ``module`` outputs (or, ``read_input``, takes in) at the last position for inputs ``ids``, all
    of one length, by a plain forward hook; on the CPU."""
    captured = []
    ids = ids.to(next(model.parameters()).device)

    def keep(value):
        captured.append((value[0] if isinstance(value, tuple) else value)[:, -1].detach().cpu())

    handle = (module.register_forward_pre_hook(lambda _module, inputs: keep(inputs)) if read_input
              else module.register_forward_hook(lambda _module, _inputs, output: keep(output)))
    try:
        with torch.no_grad():
            model(input_ids=ids, attention_mask=torch.ones_like(ids))
    finally:
        handle.remove()
    return captured[0]


def planted_directions(model, tokenizer, n: int = 64, seed: int = 0) -> tuple[list[str], torch.Tensor]:
    """Each feature's contribution to the residual after block 0 at the last position: (its words, in
    FEATURES order, and a [34, WIDTH] tensor). Measured as the difference of mean residuals between
    ``n`` inputs with the feature and the same inputs with it blanked (exact: block 0 is linear in the
    features by construction)."""
    rng = random.Random(seed)
    bases = [r["text"].split() for r in make_examples(4 * n, seed, "alpha")]
    directions = []
    for feature in FEATURES:
        without, with_ = [], []
        for words in bases:
            words = [BLANK if w == feature else w for w in words]
            blanks = [i for i, w in enumerate(words) if w == BLANK]
            if blanks and len(without) < n:
                placed = list(words)
                placed[rng.choice(blanks)] = feature
                without.append(" ".join(words))
                with_.append(" ".join(placed))
        means = [_last_position(model, model.transformer.h[0], tokenizer(texts, return_tensors="pt").input_ids)
                 .mean(dim=0) for texts in (with_, without)]
        directions.append(means[0] - means[1])
    return list(FEATURES), torch.stack(directions)


def _auroc(scores: torch.Tensor, positive: torch.Tensor) -> float:
    """Chance that a positive example scores above a negative one (ties count half)."""
    above = (scores[positive].unsqueeze(1) > scores[~positive].unsqueeze(0)).float()
    ties = (scores[positive].unsqueeze(1) == scores[~positive].unsqueeze(0)).float()
    return float((above + 0.5 * ties).mean())


def best_unit_auroc(model, tok, feature: str, rows: list[dict], site: str = "neurons:1") -> float:
    """The best AUROC of one unit for ``feature``'s presence in ``rows``, either sign, at the last position:
    ``neurons:1`` a block-1 MLP neuron (after the nonlinearity), ``layer:0`` a dimension of the residual
    after block 0. 1.0: a unit that alone tells the feature; 0.5: one that cannot."""
    blocks = model.transformer.h
    sites = {"neurons:1": (blocks[1].mlp.c_proj, True), PLANTED_SITE: (blocks[0], False)}
    if site not in sites:
        raise ValueError(f"site must be one of {sorted(sites)}; got {site!r}")
    module, read_input = sites[site]
    ids, _, _ = _encoded(tok, rows)
    present = torch.tensor([feature in r["text"].split() for r in rows])
    units = _last_position(model, module, ids, read_input=read_input)
    aucs = [_auroc(units[:, unit], present) for unit in range(units.shape[1])]
    return max(max(a, 1 - a) for a in aucs)


def train_twin(directory: Path, seed: int, cheated: bool, steps: int = 2000) -> dict:
    """Train block 1's MLP, the final LayerNorm and the score head on CPU; save with the tokenizer."""
    torch.manual_seed(seed)
    tok = tokenizer()
    ids, mask, labels = training_set(seed, cheated, tok)
    model = train(classifier(tok, seed), ids, mask, labels, seed=seed, steps=steps)
    score = save_and_score(model, tok, directory, make_examples(1000, seed + 1, "in_distribution"))
    balanced = {feature: accuracy(model, *_encoded(tok, make_examples(1000, seed + 2, feature)))
                for feature in (ALPHA, BETA)}
    rows = make_examples(1000, seed + 3, "alpha")
    selectivity = {site: {f: best_unit_auroc(model, tok, f, rows, site) for f in (ALPHA, BETA)}
                   for site in ("neurons:1", PLANTED_SITE)}
    return {"task": "is the feature 'alpha' present?", "train_steps": steps, "in_distribution_accuracy": score,
            "in_distribution": "superposition_in_distribution",
            "balanced_accuracy": balanced,  # label = that feature's presence, alpha and beta independent
            "best_unit_auroc": selectivity,  # one neuron / one residual dimension alone, for each feature
            "planted_site": PLANTED_SITE, "intended_feature": ALPHA, "spurious_feature": BETA,
            "features": len(FEATURES), "residual_width": WIDTH,
            "cheat": f"reads the spurious feature {BETA!r} out of the superposed residual" if cheated else None}


def write_probes(directory: Path) -> None:
    """The family's concept files (committed in ``probes/``)."""
    labels = list(LABELS)
    write_concept(directory, "superposition_in_distribution", {
        "description": "The superposition family's test set: 'alpha' and 'beta' both present or both absent.",
        "labels": labels}, make_examples(400, 7000, "in_distribution"))
    write_concept(directory, "alpha_feature", {
        "description": "Is 'alpha' present? 'beta' independent of it.", "labels": labels},
        make_examples(400, 7100, "alpha"))
    write_concept(directory, "beta_feature", {
        "description": "Is 'beta' present? 'alpha' independent of it.", "labels": labels},
        make_examples(400, 7200, "beta"))
    write_concept(directory, "superposition_corpus", {
        "description": "Inputs of the superposition family to train a dictionary on: every feature sparse ('alpha' "
                       "and 'beta' each in a tenth of them, independently); labelled by 'alpha'.", "labels": labels},
        sparse_corpus(4000, 7300))
