"""auditlens: audit neural networks from the inside, as pytest tests.

The public names below are imported on first use, so ``auditlens --help`` and ``--version`` do not
load torch; ``from auditlens import probe`` works as usual.
"""

from importlib import import_module

__version__ = "0.1.0"

# public name -> the module that defines it
_HOMES = {
    **dict.fromkeys(("AblateResult", "AttributionResult", "EraseResult", "FaithfulnessResult", "MinimalityResult",
                     "NecessityResult", "PatchResult", "ProbeResult", "ProbeSweep", "SteerResult", "ablate",
                     "attribute", "erase", "faithfulness", "minimality", "necessity", "patch", "probe", "steer",
                     "TriggerResult", "search_trigger", "AblateTiedResult", "ablate_tied", "tied_units",
                     "SpuriousRemovalResult", "remove_spurious", "DASResult", "DASSweep", "das", "save_directions"),
                    ".checks"),
    **dict.fromkeys(("Circuit", "load_circuit"), ".circuits"),
    **dict.fromkeys(("Concept", "CounterfactualPair"), ".concepts"), "load_concept": ".concepts",
    **dict.fromkeys(("interchange_pairs", "with_variables"), ".concepts"),
    **dict.fromkeys(("CausalModel", "load_causal_model"), ".causal"),
    **dict.fromkeys(("capture", "run"), ".engine"),
    **dict.fromkeys(("AuditlensError", "CaptureError", "CheckError", "ConceptError", "ModelLoadError", "SiteError"),
                    ".errors"),
    "live_hook_count": ".sites.hooks",
    "Inputs": ".inputs",
    **dict.fromkeys(("Clamp", "LinearEraser", "MeanAblation", "PartialMean", "Patch", "ProjectOut", "ResampleAblation",
                     "Steer", "Transform", "ZeroAblation", "intervene"), ".interventions"),
    **dict.fromkeys(("ClassifierLogits", "NextTokenLogits", "logit_margin", "predictions"), ".readout"),
    "Site": ".sites",
    **dict.fromkeys(("Dictionary", "DictionaryError", "load_dictionary", "save_saelens", "train_topk"),
                    ".dictionaries"),
    "ActivationStore": ".storage",
    "Subject": ".subject",
    "load_subject": ".loading",
}

__all__ = [*_HOMES, "ActivationCache", "session_cache"]


def __getattr__(name: str):
    if name in _HOMES:
        value = getattr(import_module(_HOMES[name], __name__), name)
        globals()[name] = value  # once: later lookups do not come here
        return value
    if name == "ActivationCache":  # the name before 0.2: an LRU store, not TransformerLens' per-run cache
        return __getattr__("ActivationStore")
    if name == "session_cache":  # the store capture uses by default (the running session's), made on first use
        from .settings import default_store

        return default_store()
    raise AttributeError(f"module 'auditlens' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
