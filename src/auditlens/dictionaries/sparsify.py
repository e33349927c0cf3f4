"""EleutherAI sparsify's on-disk format: one folder per hookpoint, named after it (``layers.6``,
``layers.6.mlp``), holding ``cfg.json`` and ``sae.safetensors``.

Read as ``SparseCoder.load_from_disk`` reads it: ``encoder.weight`` [d_sae, d_in], ``encoder.bias``
[d_sae], ``W_dec`` [d_sae, d_out], ``b_dec`` [d_out], and with ``skip_connection`` a ``W_skip`` stored
[d_out, d_in] (sparsify adds ``x @ W_skip.mT``). ``SparseCoder.encode`` subtracts ``b_dec`` from the
input unless the config says ``transcode``, then keeps the top ``k`` of ``relu(encoder(x))`` (the
``topk`` activation; ``groupmax`` is not supported). An SAE reads its hookpoint module's output; a
transcoder reads that module's input and predicts its output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .dictionary import Dictionary
from .errors import DictionaryError
from .files import CONFIG, config_bool, config_int, read_config, read_tensors

WEIGHTS = "sae.safetensors"


def read_sparsify(directory: Path) -> Dictionary:
    """The dictionary in one sparsify hookpoint folder (``cfg.json`` + ``sae.safetensors``)."""
    cfg_path, weights_path = directory / CONFIG, directory / WEIGHTS
    cfg = read_config(cfg_path)
    _check_activation(cfg, cfg_path)
    d_in = config_int(cfg, "d_in", cfg_path)
    if cfg.get("num_latents"):  # 0 or absent: sparsify uses expansion_factor * d_in
        num_latents = config_int(cfg, "num_latents", cfg_path)
    else:
        num_latents = d_in * config_int(cfg, "expansion_factor", cfg_path, default=32)
    k = config_int(cfg, "k", cfg_path, default=32)
    transcode = config_bool(cfg, "transcode", cfg_path, default=False)
    skip = config_bool(cfg, "skip_connection", cfg_path, default=False)
    weights = _weights(read_tensors(weights_path), skip, weights_path)
    if tuple(weights["W_enc"].shape) != (d_in, num_latents):
        raise DictionaryError(f"{cfg_path.resolve()} says d_in={d_in} and {num_latents} latents, but encoder.weight in "
                              f"{weights_path.resolve()} has shape {tuple(weights['W_enc'].T.shape)} (expected "
                              f"[{num_latents}, {d_in}]); the config and weights belong to different dictionaries")
    if k > num_latents:
        raise DictionaryError(f"{cfg_path.resolve()}: k={k} exceeds the {num_latents} latents; k must be in "
                              f"1..{num_latents}")
    hookpoint = directory.resolve().name
    return Dictionary(
        architecture="topk", **weights, k=k, apply_b_dec_to_input=not transcode, hook_name=hookpoint,
        hook_name_out=hookpoint if transcode else None, source=weights_path.resolve(), format="sparsify",
        transcoder=transcode, reads_input=transcode)


def _check_activation(cfg: dict[str, Any], path: Path) -> None:
    activation = cfg.get("activation", "topk")
    if activation != "topk":
        raise DictionaryError(f"{path.resolve()}: activation {activation!r} is not supported; auditlens reads "
                              "sparsify dictionaries with the 'topk' activation only")
    if cfg.get("signed"):
        raise DictionaryError(f"{path.resolve()}: signed=true (latents of either sign) is not supported; auditlens "
                              "reads unsigned topk dictionaries only")


def _weights(tensors: dict[str, Any], skip: bool, path: Path) -> dict[str, Any]:
    needed = ["encoder.weight", "encoder.bias", "W_dec", "b_dec"] + (["W_skip"] if skip else [])
    missing, unknown = [n for n in needed if n not in tensors], sorted(set(tensors) - set(needed))
    if missing or unknown:
        raise DictionaryError(f"{path.resolve()} holds {', '.join(sorted(tensors)) or 'no tensors'}; a sparsify "
                              f"dictionary{' with skip_connection' if skip else ''} needs exactly {', '.join(needed)}"
                              + (f" (missing: {', '.join(missing)})" if missing else "")
                              + (f" (not understood: {', '.join(unknown)})" if unknown else "")
                              + ("; is skip_connection in cfg.json right?" if "W_skip" in missing + unknown else ""))
    for name in ("encoder.weight", "W_skip"):
        if name in tensors and tensors[name].ndim != 2:
            raise DictionaryError(f"{path.resolve()}: {name} has shape {tuple(tensors[name].shape)}; it must be 2-D")
    weights = {"W_enc": tensors["encoder.weight"].T, "b_enc": tensors["encoder.bias"], "W_dec": tensors["W_dec"],
               "b_dec": tensors["b_dec"]}
    if skip:
        weights["W_skip"] = tensors["W_skip"].T  # stored [d_out, d_in]; sparsify adds x @ W_skip.mT
    return weights
