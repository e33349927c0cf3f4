"""SAELens' on-disk format: a folder with ``cfg.json`` and ``sae_weights.safetensors``.

Read as SAELens' ``SAE.load_from_disk`` reads it (``handle_config_defaulting`` for configs from before
6.0, then one config class per architecture): ``W_enc`` [d_in, d_sae], ``b_enc`` [d_sae], ``W_dec``
[d_sae, d_out], ``b_dec`` [d_out], ``threshold`` [d_sae] (jumprelu; a training checkpoint's
``log_threshold`` is exponentiated), ``W_skip`` stored [d_out, d_in] (skip transcoders). Weights are
cast to the config's ``dtype``. Folded at load, exactly: a topk config's
``rescale_acts_by_decoder_norm`` (as SAELens does when it saves for inference) and an old
``scaling_factor`` that multiplied the latents before decoding."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .dictionary import ARCHITECTURES, Dictionary
from .errors import DictionaryError
from .files import CONFIG, config_bool, config_int, read_config, read_tensors

WEIGHTS = "sae_weights.safetensors"
# SAELens transcoder architectures, and the encoding each uses
TRANSCODERS = {"transcoder": "standard", "skip_transcoder": "standard", "jumprelu_transcoder": "jumprelu"}
SUPPORTED = (*ARCHITECTURES, *TRANSCODERS)
_DTYPES = {name: getattr(torch, name) for name in ("float32", "float64", "float16", "bfloat16")}
# the version that moved hook names into "metadata"; writing it keeps SAELens off its pre-6.0 path
_FORMAT_VERSION = "6.0.0"


def read_saelens(directory: Path) -> Dictionary:
    """The dictionary in a SAELens folder (``cfg.json`` + ``sae_weights.safetensors``)."""
    cfg_path, weights_path = directory / CONFIG, directory / WEIGHTS
    cfg = read_config(cfg_path)
    kind = _architecture(cfg, cfg_path)
    _check_normalization(cfg, cfg_path)
    dtype = _dtype(cfg, cfg_path)
    weights = {name: tensor.to(dtype) for name, tensor in _weights(read_tensors(weights_path), kind,
                                                                    weights_path).items()}
    _check_widths(cfg, weights, cfg_path, weights_path)
    transcoder = kind in TRANSCODERS
    architecture = TRANSCODERS.get(kind, kind)
    apply_b_dec = config_bool(cfg, "apply_b_dec_to_input", cfg_path, default=not transcoder)
    if transcoder and apply_b_dec:
        raise DictionaryError(f"{cfg_path.resolve()}: apply_b_dec_to_input is true for a {kind}; a transcoder's "
                              "b_dec lives at its output, so SAELens refuses this too: set it to false")
    k = None
    if architecture == "topk":
        k = _topk_k(cfg, cfg_path)
        if config_bool(cfg, "rescale_acts_by_decoder_norm", cfg_path, default=False):
            weights = _fold_decoder_norm(weights)
    metadata = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    return Dictionary(
        architecture=architecture, **weights, k=k, apply_b_dec_to_input=apply_b_dec,
        hook_name=_first(metadata, cfg, "hook_name", "hook_point", "hf_hook_name"),
        hook_name_out=_first(metadata, cfg, "hook_name_out"), source=weights_path.resolve(), format="saelens",
        transcoder=transcoder)


def save_saelens(dictionary: Dictionary, directory: str | Path, *, hook_name: str | None = None,
                 extra_metadata: dict | None = None) -> Path:
    """Write ``dictionary`` as a SAELens 6 folder (``cfg.json``, ``sae_weights.safetensors``, float32)
    into ``directory`` (made if needed) and return it; ``load_dictionary`` reads it back exactly.
    ``hook_name`` (default: the dictionary's) goes to ``metadata.hook_name``, after ``extra_metadata``."""
    kind = _saelens_kind(dictionary)
    directory = Path(directory)
    metadata = {"sae_lens_version": _FORMAT_VERSION, "sae_lens_training_version": _FORMAT_VERSION,
                **(extra_metadata or {})}
    if hook_name or dictionary.hook_name:
        metadata["hook_name"] = hook_name or dictionary.hook_name
    if dictionary.hook_name_out:
        metadata["hook_name_out"] = dictionary.hook_name_out
    cfg: dict[str, Any] = {
        "architecture": kind, "d_in": dictionary.d_in, "d_sae": dictionary.d_sae, "dtype": "float32",
        "device": "cpu", "apply_b_dec_to_input": dictionary.apply_b_dec_to_input, "normalize_activations": "none",
        "reshape_activations": "none", "metadata": metadata}
    if dictionary.architecture == "topk":
        cfg.update(k=dictionary.k, rescale_acts_by_decoder_norm=False)
    if kind in TRANSCODERS:
        cfg["d_out"] = dictionary.d_out
    try:
        text = json.dumps(cfg, indent=2)
    except (TypeError, ValueError) as exc:
        raise DictionaryError(f"extra_metadata for {directory.resolve() / CONFIG} cannot be written as JSON ({exc}); "
                              "give strings, numbers, lists and dicts only") from None
    from safetensors.torch import save_file

    tensors = {"W_enc": dictionary.W_enc, "b_enc": dictionary.b_enc, "W_dec": dictionary.W_dec,
               "b_dec": dictionary.b_dec, "threshold": dictionary.threshold,
               "W_skip": None if dictionary.W_skip is None else dictionary.W_skip.T}
    directory.mkdir(parents=True, exist_ok=True)
    save_file({name: tensor.detach().to("cpu", torch.float32).contiguous() for name, tensor in tensors.items()
               if tensor is not None}, str(directory / WEIGHTS))
    (directory / CONFIG).write_text(text + "\n", encoding="utf-8")
    return directory


def _saelens_kind(d: Dictionary) -> str:
    """The SAELens architecture that encodes exactly as ``d`` does; DictionaryError when none does."""
    if not d.is_transcoder and d.W_skip is None:
        return d.architecture
    kind = {("standard", False): "transcoder", ("standard", True): "skip_transcoder",
            ("jumprelu", False): "jumprelu_transcoder"}.get((d.architecture, d.W_skip is not None))
    if kind is None or d.apply_b_dec_to_input or d.reads_input:
        skip = " with a skip connection" if d.W_skip is not None else ""
        what = "transcoder" if d.is_transcoder else "SAE"
        raise DictionaryError(f"{d!r} cannot be written for SAELens: it is a {d.architecture} {what}{skip}"
                              f"{' that centres its input by b_dec' if d.apply_b_dec_to_input else ''}, and SAELens "
                              "has transcoders of kinds transcoder, skip_transcoder (standard, input not centred) "
                              "and jumprelu_transcoder only; keep it in its own format")
    return kind


def _architecture(cfg: dict[str, Any], path: Path) -> str:
    """The file's architecture, with SAELens' defaults for configs from before 6.0."""
    if "architecture" not in cfg and not _says_pre_6(cfg):
        raise DictionaryError(f"{path.resolve()} names no architecture; add \"architecture\": one of "
                              f"{', '.join(SUPPORTED)} (a SAELens config from before 6.0, which names its version "
                              "in sae_lens_training_version or its activation in activation_fn, is read as standard)")
    kind = cfg.get("architecture", "standard")  # configs from before architectures existed were standard
    if kind not in SUPPORTED:
        raise DictionaryError(f"{path.resolve()}: architecture {kind!r} is not supported; auditlens reads "
                              f"{', '.join(SUPPORTED)} (a batchtopk or matryoshka SAE exported for inference is "
                              "saved as jumprelu; gated SAEs are not supported)")
    if _pre_6(cfg):
        activation = cfg.get("activation_fn", cfg.get("activation_fn_str"))
        if activation == "topk" and _kwargs(cfg).get("k") is not None:
            return "topk"  # SAELens before 6.0 named topk by its activation function
        if activation not in (None, "relu", "topk"):
            raise DictionaryError(f"{path.resolve()}: activation_fn {activation!r} is not supported; auditlens "
                                  "encodes with relu (standard, jumprelu) or topk")
    return kind


def _topk_k(cfg: dict[str, Any], path: Path) -> int:
    if "k" not in cfg and _kwargs(cfg).get("k") is not None:
        return config_int(_kwargs(cfg), "k", path)
    if "k" not in cfg:
        raise DictionaryError(f"{path.resolve()} is a topk SAE without k (SAELens would silently assume 100); "
                              'add "k": <latents kept per input> to the config')
    return config_int(cfg, "k", path)


def _check_normalization(cfg: dict[str, Any], path: Path) -> None:
    value = cfg.get("normalize_activations")
    if value in (None, "none", False):
        return
    named = "expected_average_only_in" if value is True else value  # SAELens' reading of the old boolean
    if named == "expected_average_only_in":
        advice = ("fold its scaling factor into the weights first (in SAELens: "
                  "sae.fold_activation_norm_scaling_factor(scaling_factor), then sae.save_model(path))")
    else:
        advice = "'constant_norm_rescale' and 'layer_norm' rescale each input, so they cannot be folded into weights"
    raise DictionaryError(f"{path.resolve()}: normalize_activations is {value!r}; auditlens supports only 'none' "
                          f"(or null): {advice}")


def _dtype(cfg: dict[str, Any], path: Path) -> torch.dtype:
    name = str(cfg.get("dtype") or "float32").removeprefix("torch.")
    if name not in _DTYPES:
        raise DictionaryError(f"{path.resolve()}: dtype {cfg.get('dtype')!r} is unknown; valid: {', '.join(_DTYPES)}")
    return _DTYPES[name]


def _weights(tensors: dict[str, torch.Tensor], kind: str, path: Path) -> dict[str, torch.Tensor]:
    """The tensors a Dictionary takes, from a SAELens state dict."""
    tensors = dict(tensors)
    if "log_threshold" in tensors and "threshold" not in tensors:
        tensors["threshold"] = torch.exp(tensors.pop("log_threshold"))  # JumpReLU training checkpoints
    scale = tensors.pop("scaling_factor", tensors.pop("finetuning_scaling_factor", None))
    needed = ["W_enc", "b_enc", "W_dec", "b_dec"]
    needed += ["threshold"] if TRANSCODERS.get(kind, kind) == "jumprelu" else []
    needed += ["W_skip"] if kind == "skip_transcoder" else []
    missing, unknown = [n for n in needed if n not in tensors], sorted(set(tensors) - set(needed))
    if missing or unknown:
        raise DictionaryError(f"{path.resolve()} holds {', '.join(sorted(tensors)) or 'no tensors'}; a SAELens {kind} "
                              f"needs exactly {', '.join(needed)}"
                              + (f" (missing: {', '.join(missing)})" if missing else "")
                              + (f" (not understood: {', '.join(unknown)})" if unknown else ""))
    weights = {name: tensors[name] for name in needed}
    if scale is not None:
        if tuple(scale.shape) != (weights["W_dec"].shape[0],):
            raise DictionaryError(f"{path.resolve()}: scaling_factor has shape {tuple(scale.shape)}, expected "
                                  f"[d_sae={weights['W_dec'].shape[0]}]")
        weights["W_dec"] = weights["W_dec"] * scale[:, None]  # (f * s) @ W_dec == f @ (s * W_dec)
    if "W_skip" in weights:
        weights["W_skip"] = weights["W_skip"].T  # SAELens stores [d_out, d_in] and computes x @ W_skip.T
    return weights


def _check_widths(cfg: dict[str, Any], weights: dict[str, torch.Tensor], cfg_path: Path, weights_path: Path) -> None:
    widths = {"d_in": (weights["W_enc"], 0), "d_sae": (weights["W_enc"], 1)}
    if "d_out" in cfg:
        widths["d_out"] = (weights["W_dec"], 1)
    for key, (tensor, axis) in widths.items():
        given = config_int(cfg, key, cfg_path)
        if tensor.ndim != 2 or tensor.shape[axis] != given:
            name = "W_enc [d_in, d_sae]" if key != "d_out" else "W_dec [d_sae, d_out]"
            raise DictionaryError(f"{cfg_path.resolve()} says {key}={given}, but {name} in {weights_path.resolve()} "
                                  f"has shape {tuple(tensor.shape)}; the config and weights belong to different "
                                  "dictionaries")


def _fold_decoder_norm(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """SAELens' ``rescale_acts_by_decoder_norm`` folded in: latents scaled by ||W_dec row||, rows unit norm."""
    norms = weights["W_dec"].norm(dim=-1)
    return {**weights, "W_enc": weights["W_enc"] * norms, "b_enc": weights["b_enc"] * norms,
            "W_dec": weights["W_dec"] / norms[:, None]}


def _pre_6(cfg: dict[str, Any]) -> bool:
    metadata = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    version = cfg.get("sae_lens_version") or metadata.get("sae_lens_version")
    try:
        return not version or int(str(version).split(".")[0]) < 6
    except ValueError:
        return True


def _says_pre_6(cfg: dict[str, Any]) -> bool:
    """Whether a config shows it was written by SAELens before 6.0: a version below 6, or the old keys."""
    versions = [cfg.get(key) for key in ("sae_lens_training_version", "sae_lens_version") if cfg.get(key)]
    old_keys = any(key in cfg for key in ("activation_fn", "activation_fn_str", "hook_point", "hook_layer"))
    return old_keys or any(_major(v) < 6 for v in versions)


def _major(version) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return 0


def _kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    kwargs = cfg.get("activation_fn_kwargs")
    return kwargs if isinstance(kwargs, dict) else {}


def _first(metadata: dict[str, Any], cfg: dict[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` set in ``metadata`` (SAELens 6) or at the top level (before 6.0)."""
    for key in keys:
        for source in (metadata, cfg):
            if isinstance(source.get(key), str) and source[key]:
                return source[key]
    return None
