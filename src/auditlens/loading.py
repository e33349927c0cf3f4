"""Loading the model under audit: from a save_pretrained directory, the hub, the zoo or memory; safetensors
only unless pickles are allowed; sharded with accelerate when a device_map is given."""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ModelLoadError
from .model_spec import HUB_PREFIX, check_local_path, is_hub_id
from .progress import quiet_transformers
from .safe_files.checkpoint_files import TOKENIZER_FILES, check_weights
from .subject import KINDS, Subject

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_subject(
    spec: str | os.PathLike | nn.Module | Subject,
    *,
    tokenizer: Any | None = None,
    kind: str | None = None,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype | None = None,
    device_map: str | dict | None = None,
    offload_dir: str | os.PathLike | None = None,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    id: str | None = None,
) -> Subject:
    """Load the model under audit.

    ``spec`` is a directory written by ``save_pretrained``, a hub id (``hub:ORG/NAME`` where a local
    directory could be meant), ``fixture:NAME`` from the zoo, or an in-memory ``nn.Module``. A spec that
    looks like a path and names no directory is refused before any hub lookup. Safetensors only unless
    ``allow_pickle``; remote code only if ``trust_remote_code``. The model is put in eval mode on
    ``device`` with gradients off.
    ``tokenizer``: a loaded tokenizer, or its directory (str or os.PathLike) or hub id; default: the
    one saved with the model.

    ``device_map`` ("auto", "balanced", "sequential" or a dict of module -> device, as accelerate
    takes it) shards a model too large for one device across GPUs, the CPU and ``offload_dir`` on
    disk, instead of ``device``; it needs the ``accelerate`` package. ``dtype`` ("bfloat16",
    "float16", "float32") is the dtype the weights are loaded in; captured activations always come
    back as float32 on the CPU.
    """
    if isinstance(spec, Subject):
        return spec
    if isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = _load_tokenizer(tokenizer, trust_remote_code)
    torch_dtype = _resolve_dtype(dtype)
    if device_map is not None:
        if isinstance(spec, nn.Module):
            raise ModelLoadError("device_map shards a model while loading it from a directory or the hub; "
                                 "an nn.Module is already loaded: place it yourself, or pass its directory")
        _check_device_map(device_map)
    torch_device = _resolve_device(device) if device_map is None else None
    if isinstance(spec, nn.Module):
        model, metadata = spec, {}
        kind = kind or _infer_kind(model)
        subject_id = id or type(model).__name__
    else:
        text = os.fspath(spec)
        metadata: dict = {}
        if text.startswith("fixture:"):
            from .zoo import resolve_fixture

            path, metadata = resolve_fixture(text.removeprefix("fixture:"))
            source = str(path)
        else:
            source = text
        placement = None if device_map is None else {"device_map": device_map,
                                                      "offload_folder": _offload_dir(offload_dir)}
        model, tokenizer, kind = _load_pretrained(
            source, tokenizer, kind, torch_dtype, allow_pickle, trust_remote_code, placement
        )
        subject_id = id or text
    if kind not in KINDS:
        raise ModelLoadError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if device_map is not None:  # accelerate placed every part; inputs go where the embeddings run
        torch_device = _input_device(model)
    else:
        if torch_dtype is not None:
            model = model.to(torch_dtype)
        model = model.to(torch_device)
    model = model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return Subject(model, tokenizer, subject_id, kind, torch_device, metadata)


def _load_tokenizer(where: str | os.PathLike, trust_remote_code: bool):
    """``tokenizer=`` given as a directory or hub id rather than a tokenizer: loaded as transformers does."""
    import transformers

    given, expected = os.fspath(where), "give a directory a tokenizer was saved to, a hub id, or a loaded tokenizer"
    directory = Path(given).expanduser()
    if directory.is_dir() and not any((directory / name).is_file() for name in TOKENIZER_FILES):
        raise ModelLoadError(f"tokenizer={given!r}: the directory holds none of {', '.join(TOKENIZER_FILES)}; "
                             f"{expected}")
    try:
        with quiet_transformers():
            return transformers.AutoTokenizer.from_pretrained(given, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"tokenizer={given!r}: no tokenizer there ({str(exc).splitlines()[0][:300]}); "
                             f"{expected}") from None


def _resolve_device(device: str | torch.device) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ModelLoadError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto'; got {device!r}") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} was asked for, but torch sees no CUDA GPU here; use 'cpu' or 'auto'")
    return resolved


DEVICE_MAP_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")


def _check_device_map(device_map) -> None:
    if isinstance(device_map, str) and device_map not in DEVICE_MAP_STRATEGIES:
        raise ModelLoadError(f"device_map must be one of {', '.join(DEVICE_MAP_STRATEGIES)} or a dict of "
                             f"module name -> device; got {device_map!r}")
    if not isinstance(device_map, (str, dict)):
        raise ModelLoadError(f"device_map must be a strategy name or a dict; got {type(device_map).__name__}")
    try:
        import accelerate  # noqa: F401
    except ImportError:
        raise ModelLoadError("device_map needs the accelerate package: pip install 'auditlens[big]' "
                             "(or pip install accelerate)") from None


def _offload_dir(offload_dir) -> str:
    """Where accelerate may put weights that fit on no device (only used if the map sends some to disk)."""
    if offload_dir is not None:
        return os.fspath(offload_dir)
    import tempfile

    return tempfile.mkdtemp(prefix="auditlens-offload-")


def _input_device(model: nn.Module) -> torch.device:
    """The device the token ids go to: where the input embeddings' weight lives. An embedding offloaded
    by accelerate (its weight on the meta device) has a hook that moves its inputs to where it runs,
    so its ids start on the CPU."""
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    weight = getattr(embeddings, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.device.type != "meta":
        return weight.device
    return torch.device("cpu")


def _resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ModelLoadError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    return DTYPES[dtype]


def _infer_kind(model: nn.Module, architectures: Sequence[str] = ()) -> str:
    names = list(architectures) or [type(model).__name__]
    if any(n.endswith("ForSequenceClassification") for n in names):
        return "classifier"
    if any(n.endswith(("ForCausalLM", "LMHeadModel")) for n in names):
        return "causal-lm"
    return "encoder"


def _load_pretrained(source, tokenizer, kind, dtype, allow_pickle, trust_remote_code, placement=None):
    import transformers

    check_local_path(source)
    named_hub = source.startswith(HUB_PREFIX)
    source = source.removeprefix(HUB_PREFIX)
    directory = Path(source).expanduser()
    if named_hub and directory.is_dir():  # transformers reads a directory of that name before the hub
        raise ModelLoadError(f"{HUB_PREFIX}{source}: a local directory {source} exists too, and transformers would "
                             "read it instead of the hub; run from another directory, or rename that one")
    is_local = directory.is_dir()
    if not is_local:
        if not is_hub_id(source):
            raise ModelLoadError(f"{HUB_PREFIX}{source} is not a hub id; write one as {HUB_PREFIX}ORG/NAME")
    else:
        if not (directory / "config.json").is_file():
            raise ModelLoadError(f"{directory} has no config.json; is it a save_pretrained directory?")
        check_weights(directory, allow_pickle)
    where = str(directory) if is_local else source
    try:
        config = transformers.AutoConfig.from_pretrained(where, trust_remote_code=trust_remote_code)
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise ModelLoadError(
                f"{source} needs code from its repository to load (trust_remote_code); auditlens never runs "
                "it unless you pass trust_remote_code=True (--audit-trust-remote-code)"
            ) from exc
        raise ModelLoadError(f"cannot read the config of {source}: {exc}") from exc
    except OSError as exc:
        if is_local:
            raise ModelLoadError(f"cannot read {directory / 'config.json'}: {str(exc).splitlines()[0]}") from exc
        raise ModelLoadError(
            f"cannot load {source!r}: it is not a local directory, and the hub gave no model for it "
            f"(offline or unknown id; without a network, HF_HUB_OFFLINE=1 makes this fail at once instead of "
            f"after retries). Detail: {str(exc).splitlines()[0][:300]}"
        ) from None
    forced = kind is not None  # a kind the caller chose: a head it leaves out is left out on purpose
    kind = kind or _infer_kind(nn.Module(), getattr(config, "architectures", None) or ())
    auto = {
        "classifier": transformers.AutoModelForSequenceClassification,
        "causal-lm": transformers.AutoModelForCausalLM,
        "encoder": transformers.AutoModel,
    }.get(kind)
    if auto is None:
        raise ModelLoadError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    options = {"trust_remote_code": trust_remote_code, "use_safetensors": None if allow_pickle else True}
    if dtype is not None:
        options["dtype"] = dtype
    options.update(placement or {})
    try:
        with quiet_transformers():
            model, info = auto.from_pretrained(where, config=config, output_loading_info=True, **options)
    except RuntimeError as exc:
        if "size mismatch" not in str(exc) and "ignore_mismatched_sizes" not in str(exc):
            raise
        shapes = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line]
        detail = "; ".join(shapes[:3])[:600] or "transformers lists them above"
        raise ModelLoadError(f"{source}: weights of the wrong shape for its config.json (was config.json edited "
                             f"after saving?): {detail}") from None
    except pickle.UnpicklingError as exc:
        raise ModelLoadError(
            f"{source}: the pickle checkpoint holds more than tensors, and auditlens reads pickles with "
            f"torch.load(weights_only=True) even when allowed, so it was not run. {str(exc).splitlines()[0][:120]}"
        ) from exc
    except (OSError, ValueError) as exc:
        hint = "" if allow_pickle else " (only safetensors weights are read unless allow_pickle=True)"
        raise ModelLoadError(f"cannot load the weights of {source}{hint}: {str(exc).splitlines()[0]}") from exc
    _check_loading_info(source, kind, type(model).__name__, info, forced)
    if tokenizer is None and (not is_local or any((directory / f).exists() for f in TOKENIZER_FILES)):
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(where, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load the tokenizer of {source}: {str(exc).splitlines()[0]}") from exc
    return model, tokenizer, kind


def _check_loading_info(source, kind: str, model_class: str, info: dict, forced: bool) -> None:
    """Weights the model needed but the checkpoint lacks are freshly initialised by transformers, and
    weights it holds that the model does not use are dropped: either way the model audited would not
    be the model trained. Both are errors naming the first keys, except weights left out by a kind the
    caller forced (``kind="encoder"`` audits a classifier's body without its head)."""
    missing, unexpected = sorted(info.get("missing_keys") or ()), sorted(info.get("unexpected_keys") or ())
    mismatched = [str(m[0]) if isinstance(m, tuple) else str(m) for m in info.get("mismatched_keys") or ()]
    if missing:
        raise ModelLoadError(f"{source}: the checkpoint lacks {len(missing)} weight(s) {model_class} needs "
                             f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); they would be "
                             "random. Is it the whole checkpoint, saved by save_pretrained?")
    if unexpected and not forced:
        hint = "" if kind != "encoder" else (" It was loaded as an encoder because config.json names no "
                                             "architecture: pass kind='classifier' or kind='causal-lm' if it "
                                             "has a head.")
        raise ModelLoadError(f"{source}: the checkpoint holds {len(unexpected)} weight(s) {model_class} does not "
                             f"use ({', '.join(unexpected[:5])}{', ...' if len(unexpected) > 5 else ''}); they "
                             f"would be dropped.{hint}")
    if mismatched:
        raise ModelLoadError(f"{source}: weights of the wrong shape for its config.json: {', '.join(mismatched[:5])}")
