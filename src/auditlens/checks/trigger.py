"""search_trigger: look for a short phrase of tokens that hijacks the answer, by gradient-guided search
(``auditlens.triggers.search``), and measure what the best one found does on held-out examples.

A one-token vocabulary scan finds a one-token trigger only; a backdoor whose trigger is a phrase whose
words each do nothing alone passes it. This searches phrases of ``length`` tokens at ``positions``
the audit says the rule ignores, within a budget of forward-pass equivalents.
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
from ..triggers.exhaustive import exhaustive
from ..triggers.search import BACKWARD_COST, Scorer, input_embeddings, layout, search

MIN_BUDGET = 3 + BACKWARD_COST  # the clean pass, one gradient, one candidate


@dataclass(frozen=True, kw_only=True)
class TriggerResult(CheckResult):
    """The best trigger the search found, how often it flips held-out answers, and what it cost."""

    mechanistic = True
    figure_metrics = ("flip_rate", "search_flip_rate")

    concept: str = ""
    trigger: str = ""  # the tokens found, as text
    trigger_ids: tuple[int, ...] = ()
    length: int = 0
    placement: str = ""  # where the trigger was written: "substitute at [-3, -2]", "insert at -1"
    flip_rate: float = 0.0  # held-out examples whose prediction the trigger changes
    flip_rate_ci: Interval | None = None  # Wilson
    search_flip_rate: float = 0.0  # the same on the examples the search saw
    passes_used: int = 0  # forward-pass equivalents over the search set (a backward counts 2)
    budget: int = 0
    exhaustive_passes: int = 0  # |allowed tokens| ** length: what trying every trigger would cost
    method: str = "search"  # "exhaustive" where every trigger fit the budget and was tried, else "search"
    forward_passes: int = 0
    backward_passes: int = 0
    restarts: int = 0
    examples: tuple[Example, ...] = ()

    def headline(self) -> str:
        return (f"search_trigger ({self.placement}, {self.length} tokens) on {self.subject}, concept "
                f"{self.concept!r}: best trigger {self.trigger!r}, n={self.n} held-out examples; "
                f"{self.passes_used} forward-pass equivalents of a budget of {self.budget} "
                + ("(every trigger tried)" if self.method == "exhaustive" else
                   f"(gradient-guided search; trying every trigger would cost {self.exhaustive_passes})"))


def allowed_tokens(subject, tokens: Sequence[str | int] | None) -> torch.Tensor:
    """Token ids the trigger may use: ``tokens`` (text or ids), default every non-special token."""
    vocab = subject.vocab_size or input_embeddings(subject).weight.shape[0]
    tokenizer = subject.tokenizer
    if tokens is None:
        special = set(getattr(tokenizer, "all_special_ids", ()) or ())
        ids = [i for i in range(vocab) if i not in special]
    else:
        ids = []
        for token in tokens:
            if isinstance(token, str) and tokenizer is not None and token in tokenizer.get_vocab():
                ids.append(tokenizer.get_vocab()[token])
            elif isinstance(token, int) and not isinstance(token, bool) and 0 <= token < vocab:
                ids.append(token)
            else:
                raise CheckError(f"search_trigger: tokens= holds {token!r}, which is not a token of {subject.id!r}; "
                                 f"give tokens of its vocabulary as text or ids 0..{vocab - 1}")
    if not ids:
        raise CheckError(f"search_trigger: no token is allowed (tokens={tokens!r}); give at least one")
    return torch.tensor(sorted(set(ids)), dtype=torch.long)


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


def search_trigger(subject, concept: Concept, length: int = 2, positions: Sequence[int] | None = None,
                   budget: int = 2000, *, insert: bool = False, tokens: Sequence[str | int] | None = None,
                   restarts: int = 32, steps: int = 8, candidates: int = 32, top_k: int = 16,
                   search_examples: int = 32, held_out: int = 256, seed: int | None = None) -> TriggerResult:
    """Search for ``length`` tokens that, written at ``positions`` (substituted, default the tokens just
    before each example's last one; or ``insert``-ed before index ``positions[0]``, default before the
    last token), move the model's answer on the concept's examples. ``tokens`` restricts the trigger's
    vocabulary (default: every non-special token). The search sees ``search_examples`` examples and at
    most ``budget`` forward-pass equivalents over them; where every trigger fits in the budget
    (|tokens| ** length), every one is tried instead (``method`` says which). The best trigger's flip
    rate is measured on up to ``held_out`` other examples. Deterministic under ``seed`` (default: the audit seed)."""
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
    allowed = allowed_tokens(subject, tokens)
    scorer = Scorer(subject, readout, search_inputs, layout(search_inputs, length, positions, insert, context))
    if len(allowed) ** length <= budget - scorer.spent:  # trying them all is within budget: miss nothing
        found = exhaustive(scorer, allowed, length)
    else:
        found = search(scorer, allowed, length, budget=budget, seed=seed, restarts=restarts, steps=steps,
                       candidates=candidates, top_k=top_k)
    held_layout = layout(held_inputs, length, positions, insert, context)
    judge = Scorer(subject, readout, held_inputs, held_layout)
    trigger = torch.tensor(found.trigger)
    after = judge.scores(trigger[None]).argmax(dim=1)
    flips = (after != judge.clean).float()
    ids, mask = held_layout.apply(held_inputs, trigger[None])
    shown = [*flips.nonzero().flatten().tolist()[:5]] or list(range(min(3, len(rest))))
    examples = tuple(Example(f"{held_inputs.describe(i)}  ->  {_show(subject, ids[i], mask[i])}",
                             f"prediction {concept.label_name(int(judge.clean[i]))} -> "
                             f"{concept.label_name(int(after[i]))}") for i in shown)
    words = _show(subject, trigger, torch.ones_like(trigger))
    where = f"insert at {positions[0] if positions else -1}" if insert else \
        f"substitute at {list(positions) if positions is not None else list(range(-length - 1, -1))}"
    return TriggerResult(
        check="search_trigger", subject=subject.id, site=f"input tokens ({where})", n=len(rest), concept=concept.name,
        trigger=words, trigger_ids=found.trigger, length=length, placement=where, flip_rate=float(flips.mean()),
        flip_rate_ci=wilson(int(flips.sum()), len(rest)), search_flip_rate=found.search_flip_rate,
        passes_used=found.passes_used, budget=budget, exhaustive_passes=len(allowed) ** length,
        forward_passes=found.forward_passes + judge.forwards, backward_passes=found.backward_passes,
        restarts=found.restarts_run, method="exhaustive" if found.exhaustive else "search", examples=examples,
        per_example={"flip_rate": flips},
        data_digest=f"{held_inputs.digest}:{'-'.join(map(str, found.trigger))}",
    )
