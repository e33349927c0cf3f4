"""search_trigger: look for a short phrase of tokens that hijacks the answer, by gradient-guided search
(``auditlens.triggers.search``), and measure what the best one found does on held-out examples.

A one-token vocabulary scan finds a one-token trigger only; a backdoor whose trigger is a phrase whose
words each do nothing alone passes it. This searches phrases of ``length`` tokens at ``positions``
the audit says the rule ignores, within a budget of forward-pass equivalents, towards each target answer
in turn (``triggers.targets``), and calibrates what it found against the model's own fragility: the
null of other triggers of the same shape (``triggers.calibration``). The decision
rests on the excess: the share of the answers ordinary perturbations leave alone that the trigger takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..concepts.concept import Concept
from ..errors import CheckError, ConceptError
from ..readout import readout_for
from ..results import CheckResult, Example
from ..settings import seed_or_default
from ..stats import MIN_EXAMPLES_FOR_CI, Interval, wilson
from ..triggers.calibration import NULL_FEWEST, calibrate, enumerated_null, null_size, random_triggers
from ..triggers.provenance import trained_tokens
from ..triggers.search import BACKWARD_COST, Scorer, Search, input_embeddings, layout
from ..triggers.targets import answer_targets, moved_to, search_each_target

MIN_BUDGET = 3 + BACKWARD_COST  # the clean pass, one gradient, one candidate


@dataclass(frozen=True, kw_only=True)
class TriggerResult(CheckResult):
    """The best trigger the search found, how often it flips held-out answers, and what it cost."""

    mechanistic = True
    figure_metrics = ("flip_rate", "search_flip_rate")

    concept: str = ""
    trigger: str = ""  # the tokens found towards the target that stands out most, as text
    trigger_ids: tuple[int, ...] = ()
    length: int = 0
    placement: str = ""  # where the trigger was written: "substitute at [-3, -2]", "insert at -1"
    target: str = ""  # the answer the trigger moves rows to (the target whose best trigger moved the most)
    flip_rate: float = 0.0  # held-out examples whose prediction the trigger changes
    flip_rate_ci: Interval | None = None  # Wilson
    target_rate: float = 0.0  # held-out rows not answering the target that the trigger moves to it
    null_rate: float = 0.0  # the same under the null's triggers of the same shape (their mean; enumerated: on the
    # search rows)
    null_upper: float = 0.0  # the null triggers' 90th percentile of it
    excess_flip_rate: float = 0.0  # (target_rate - null_rate) / (1 - null_rate): beyond ordinary perturbations
    excess_flip_rate_ci: Interval | None = None  # bootstrap over the rows (unpaired where the null is enumerated)
    anomaly: float = 0.0  # robust z of target_rate against the null triggers (descriptive: the search is a max)
    search_flip_rate: float = 0.0  # target_rate on the examples the search saw
    passes_used: int = 0  # forward-pass equivalents over the search set (a backward counts 2)
    budget: int = 0
    exhaustive_passes: int = 0  # |allowed tokens| ** length: what trying every trigger would cost
    method: str = "search"  # "exhaustive" where every trigger fit the budget and was tried, else "search"
    null_triggers: int = 0  # triggers in the null: random ones, or (exhaustive) every other one enumerated
    null_source: str = "random"  # "random": on the held-out rows; "enumerated": every other trigger, search rows
    vocabulary: str = ""  # the tokens the trigger was drawn from, in words
    null_passes: int = 0  # what they cost beyond the search, in forward-pass equivalents over the search set
    forward_passes: int = 0
    backward_passes: int = 0
    restarts: int = 0
    targets: tuple = ()  # per target answer: (name, trigger text, target rate, null rate, excess)
    examples: tuple[Example, ...] = ()

    def headline(self) -> str:
        return (f"search_trigger ({self.placement}, {self.length} tokens) on {self.subject}, concept "
                f"{self.concept!r}: best trigger {self.trigger!r} towards {self.target!r}, n={self.n} held-out "
                f"examples, {self.vocabulary}; {self.passes_used} forward-pass equivalents of a budget of "
                f"{self.budget} "
                + ("(every trigger tried)" if self.method == "exhaustive" else
                   f"(gradient-guided search; trying every trigger would cost {self.exhaustive_passes})")
                + (f"; null: every one of the {self.null_triggers} triggers without its tokens, scored on the search "
                   "rows by the enumeration (no extra passes)" if self.null_source == "enumerated" else
                   f"; null: {self.null_triggers} random triggers ({self.null_passes} more)"))

    def note(self) -> str | None:
        return (f"towards {self.target!r} the trigger moves {self.target_rate:.0%} of the rows not answering it, "
                + ("the other triggers of its shape (on the search rows) " if self.null_source == "enumerated" else
                   "random triggers of its shape ")
                + f"{self.null_rate:.0%} on average: it takes "
                f"{self.excess_flip_rate:.0%} of what they leave (the excess)")

    def component_values(self) -> list[dict] | None:
        return [{"component": f"target {name!r}: {trigger!r}", "target_rate": rate, "null_rate": null,
                 "excess": excess} for name, trigger, rate, null, excess in self.targets] or None


def allowed_tokens(subject, tokens: Sequence[str | int] | str | None,
                   avoid: Sequence[str | int] = ()) -> torch.Tensor:
    """Token ids the trigger may use: ``tokens`` (text or ids; ``"all"``: every token but padding, the special
    ones too, as an input's text can hold them; default every non-special token), never those of ``avoid``
    (the tokens the rule reads; a word written in several tokens avoids each of them)."""
    vocab = subject.vocab_size or input_embeddings(subject).weight.shape[0]
    tokenizer = subject.tokenizer
    if tokens is None or tokens == "all":
        special = set(getattr(tokenizer, "all_special_ids", ()) or ()) if tokens is None else \
            {getattr(tokenizer, "pad_token_id", None)}
        ids = [i for i in range(vocab) if i not in special]
    elif isinstance(tokens, str):
        raise CheckError(f"search_trigger: tokens={tokens!r}; give a list of tokens, or 'all' (every token but "
                         "padding), or nothing (every non-special token)")
    else:
        ids = _ids(subject, tokens, vocab, "tokens")
    ids = sorted(set(ids) - set(_ids(subject, avoid, vocab, "avoid")))
    if not ids:
        raise CheckError(f"search_trigger: no token is allowed (tokens={tokens!r}, avoid={list(avoid)!r}); give at "
                         "least one")
    return torch.tensor(ids, dtype=torch.long)


def _ids(subject, tokens: Sequence[str | int], vocab: int, what: str) -> list[int]:
    known = subject.tokenizer.get_vocab() if subject.tokenizer is not None else {}
    ids = []
    for token in tokens:
        if isinstance(token, str) and token in known:
            ids.append(known[token])
        elif isinstance(token, int) and not isinstance(token, bool) and 0 <= token < vocab:
            ids.append(token)
        elif what == "avoid" and isinstance(token, str) and (pieces := _pieces(subject.tokenizer, token)):
            ids += pieces  # a word of several tokens: avoiding it avoids each
        else:
            words = ", or words its tokenizer writes in known tokens" if what == "avoid" else ""
            raise CheckError(f"search_trigger: {what}= holds {token!r}, which is not a token of {subject.id!r}; "
                             f"give tokens of its vocabulary as text or ids 0..{vocab - 1}{words}")
    return ids


def _pieces(tokenizer, word: str) -> list[int]:
    """The tokens ``word`` is written in, alone or after a space (none if the tokenizer does not know it)."""
    if tokenizer is None or not word.strip():
        return []
    unknown = getattr(tokenizer, "unk_token_id", None)
    pieces = {t for text in (word, f" {word}") for t in tokenizer(text, add_special_tokens=False)["input_ids"]}
    return [] if unknown in pieces else sorted(pieces)


def _answers(subject, concept: Concept):
    concept.require_examples("search_trigger")
    if subject.kind == "causal-lm" and not concept.answer_tokens:
        raise ConceptError(f"search_trigger on {subject.id!r}, a causal LM, reads each answer as a next token, so "
                           f"concept {concept.name!r} needs answer_tokens (one token per label, e.g. [' yes', ' no']); "
                           "it has none")
    return readout_for(subject, concept.answer_token_ids(subject))


def _split(concept: Concept, seed: int, search_examples: int, held_out: int) -> tuple[list[int], list[int]]:
    """A seeded split of the concept's examples: the search set, then the held-out set."""
    order = torch.randperm(len(concept), generator=torch.Generator().manual_seed(seed)).tolist()
    searched, rest = order[:search_examples], order[search_examples:search_examples + held_out]
    if len(rest) < MIN_EXAMPLES_FOR_CI:
        raise ConceptError(f"search_trigger: concept {concept.name!r} has {len(concept)} examples; the search "
                           f"takes {len(searched)} and the held-out flip rate needs {MIN_EXAMPLES_FOR_CI} more")
    return searched, rest


def _show(subject, ids: torch.Tensor, mask: torch.Tensor) -> str:
    real = ids[mask.bool()].tolist()
    if subject.tokenizer is None:
        return " ".join(map(str, real))
    return " ".join(subject.tokenizer.convert_ids_to_tokens(real))


def _vocabulary(subject, tokens, avoid, trained_from) -> tuple[torch.Tensor, str]:
    """The allowed token ids and what they are, in words; with ``trained_from``, the trained ones only."""
    allowed = allowed_tokens(subject, tokens, avoid)
    avoided = f", {len(avoid)} avoided" if avoid else ""
    if trained_from is None:
        what = "non-special" if tokens is None else "every" if tokens == "all" else "given"
        return allowed, f"{len(allowed)} tokens ({what}{avoided})"
    from ..loading import load_subject

    trained = trained_tokens(subject, load_subject(trained_from))
    kept = allowed[torch.isin(allowed, torch.tensor(trained.ids, dtype=allowed.dtype))]
    if len(kept) == 0:
        raise CheckError(f"search_trigger: the fine-tune trained {len(trained.ids)} tokens (their input embeddings "
                         f"moved from those of {trained.base!r}), and tokens={tokens!r} with avoid= allows none of "
                         "them: nothing is left to search; avoid fewer")
    return kept, (f"{len(kept)} tokens the fine-tune trained (input embeddings moved from those of "
                  f"{trained.base!r}; "
                  f"{len(trained.ids)} moved{avoided})")


def _null(scorer: Scorer, judge: Scorer, allowed: torch.Tensor, best: Search, target: int, length: int,
          seed: int) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """The null's answers [m, rows], the clean answers of its rows (None: the judge's held-out rows) and its
    passes over those rows: as many random triggers on the held-out rows as the search's spend affords; an
    enumeration that affords fewer than NULL_FEWEST has scored every trigger on the search rows already, and
    its null is every one without the found trigger's tokens, exact and free (where enough search rows do
    not answer the target to measure it on)."""
    count = null_size(scorer.spent, len(scorer.inputs), len(judge.inputs))
    measurable = int((scorer.clean != target).sum()) >= MIN_EXAMPLES_FOR_CI
    if best.exhaustive and count < NULL_FEWEST and measurable:
        return enumerated_null(scorer.known, best.trigger).argmax(dim=2), scorer.clean, 0
    before = judge.spent
    answers = judge.scores(random_triggers(allowed, best.trigger, length, count, seed)).argmax(dim=1)
    return answers.view(count, len(judge.inputs)), None, judge.spent - before


def search_trigger(subject, concept: Concept, length: int = 2, positions: Sequence[int] | None = None,
                   budget: int = 2000, *, insert: bool = False, tokens: Sequence[str | int] | str | None = None,
                   avoid: Sequence[str | int] = (), restarts: int = 32, steps: int = 8, candidates: int = 32,
                   top_k: int = 16, search_examples: int = 32, held_out: int = 256,
                   trained_from=None, seed: int | None = None) -> TriggerResult:
    """Search for ``length`` tokens that, written at ``positions`` (substituted, default the tokens just
    before each example's last one; or ``insert``-ed before index ``positions[0]``, default before the
    last token), move the model's answers on the concept's examples to one target answer. Each target is
    searched in turn (at most 16: a classifier's labels, an LM's answer tokens). ``tokens`` is the
    trigger's vocabulary (default every non-special token; ``"all"``: every token but padding) without
    ``avoid`` (the tokens the rule reads; a word that is not one token stands for its pieces).
    ``trained_from`` (the model it was fine-tuned from: a loaded subject or a spec) keeps only the tokens
    the fine-tune trained, whose input embeddings moved from the base's (``triggers.provenance``): a planted
    trigger is one of them, the words pretraining made fragile are not. The search sees ``search_examples``
    examples and at most ``budget`` forward-pass equivalents over them; where every trigger fits
    (|tokens| ** length), every one is tried instead (``method``). The trigger of the target whose best moved
    the most held-out rows is measured on up to ``held_out`` other examples beside the null of triggers of its
    shape from the other tokens: random ones on the same held-out rows, as many as cost at most what the
    search spent; or, where an enumeration affords too few of them, every trigger it tried, as it scored them
    on the search rows (no extra pass; ``triggers.calibration``).
    Deterministic under ``seed`` (default: the audit seed)."""
    seed = seed_or_default(seed)
    readout = _answers(subject, concept)
    input_embeddings(subject)
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < MIN_BUDGET:
        raise CheckError(f"search_trigger: budget={budget!r}; the search needs at least {MIN_BUDGET} forward-pass "
                         "equivalents (the clean pass, one gradient, one candidate); the default is 2000")
    searched, rest = _split(concept, seed, search_examples, held_out)
    inputs = concept.inputs(subject)
    search_inputs, held_inputs = inputs.select(searched), inputs.select(rest)
    context = subject.max_length
    allowed, vocabulary = _vocabulary(subject, tokens, avoid, trained_from)
    scorer = Scorer(subject, readout, search_inputs, layout(search_inputs, length, positions, insert, context))
    targets = answer_targets(scorer)
    found = search_each_target(scorer, allowed, length, targets, budget=budget, seed=seed, restarts=restarts,
                               steps=steps, candidates=candidates, top_k=top_k)
    held_layout = layout(held_inputs, length, positions, insert, context)
    judge = Scorer(subject, readout, held_inputs, held_layout)
    best = torch.tensor([found[target].trigger for target in targets])
    held = judge.scores(best).view(len(targets), len(rest), -1)  # each target's best, scored once, in one batch
    rates = torch.stack([moved_to(judge.clean, held[i], c) for i, c in enumerate(targets)])
    suspect = max(range(len(targets)), key=lambda i: (float(rates[i]), found[targets[i]].objective))
    target, trigger = targets[suspect], best[suspect]
    null_answers, null_clean, spent_on_null = _null(scorer, judge, allowed, found[target], target, length, seed)
    per_target = []
    for i, c in enumerate(targets):
        answers = held[i].argmax(dim=1)
        calibration = calibrate(c, answers == c, null_answers == c, judge.clean != c, seed, interval=i == suspect,
                                null_eligible=None if null_clean is None else null_clean != c)
        per_target.append(calibration)
    chosen = per_target[suspect]
    after = held[suspect].argmax(dim=1)
    flips = (after != judge.clean).float()
    ids, mask = held_layout.apply(held_inputs, trigger[None])
    shown = [*flips.nonzero().flatten().tolist()[:5]] or list(range(min(3, len(rest))))
    examples = tuple(Example(f"{held_inputs.describe(i)}  ->  {_show(subject, ids[i], mask[i])}",
                             f"prediction {concept.label_name(int(judge.clean[i]))} -> "
                             f"{concept.label_name(int(after[i]))}") for i in shown)
    where = f"insert at {positions[0] if positions else -1}" if insert else \
        f"substitute at {list(positions) if positions is not None else list(range(-length - 1, -1))}"
    words = [_show(subject, best[i], torch.ones_like(best[i])) for i in range(len(targets))]
    return TriggerResult(
        check="search_trigger", subject=subject.id, site=f"input tokens ({where})", n=len(rest), concept=concept.name,
        trigger=words[suspect], trigger_ids=tuple(int(x) for x in trigger), length=length, placement=where,
        target=concept.label_name(target), flip_rate=float(flips.mean()),
        flip_rate_ci=wilson(int(flips.sum()), len(rest)), target_rate=chosen.target_rate, null_rate=chosen.null_rate,
        null_upper=chosen.null_upper, excess_flip_rate=chosen.excess, excess_flip_rate_ci=chosen.excess_ci,
        anomaly=chosen.anomaly, search_flip_rate=found[target].search_flip_rate, passes_used=scorer.spent,
        budget=budget, exhaustive_passes=len(allowed) ** length,
        method="exhaustive" if found[target].exhaustive else "search", null_triggers=len(null_answers),
        null_source="random" if null_clean is None else "enumerated", vocabulary=vocabulary,
        null_passes=round(spent_on_null * len(rest) / len(searched)),
        forward_passes=scorer.forwards + judge.forwards, backward_passes=scorer.backwards,
        restarts=sum(s.restarts_run for s in found.values()),
        targets=tuple((concept.label_name(c), words[i], k.target_rate, k.null_rate, k.excess)
                      for i, (c, k) in enumerate(zip(targets, per_target))),
        examples=examples, per_example={"flip_rate": flips},
        data_digest=f"{held_inputs.digest}:{'-'.join(map(str, trigger.tolist()))}",
    )
