"""The model under audit: loading from a directory, the hub, the zoo or memory; fingerprint; encoding."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ConceptError, ModelLoadError
from .inputs import Inputs, pad_token_lists
from .quiet import quiet_transformers
from .sites import Site, alias_table, config_int, n_layers, resolve_site

KINDS = ("classifier", "causal-lm", "encoder")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "tokenizer.model")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(eq=False)
class Subject:
    """A model ready to audit: eval mode, on its device, with its tokenizer and site map.

    ``forward_passes`` counts the batched forward passes auditlens ran on it; ``needs`` logs, per
    ``run()`` call, the (inputs, interventions, batch) combinations asked for (see ``accounting``).
    """

    model: nn.Module
    tokenizer: Any | None
    id: str
    kind: str
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    metadata: dict = field(default_factory=dict)
    forward_passes: int = 0
    needs: list[str] = field(default_factory=list, repr=False)

    def __repr__(self) -> str:
        return f"Subject({self.id!r}, kind={self.kind!r}, layers={self.n_layers}, device={self.device})"

    @property
    def n_layers(self) -> int:
        return n_layers(self.model)

    def site(self, name: str | Site) -> Site:
        return resolve_site(self.model, name)

    def aliases(self) -> list[str]:
        return list(alias_table(self.model))

    @cached_property
    def fingerprint(self) -> str:
        """Hash of the config and every parameter and buffer: equal fingerprints, equal model.

        Weights accelerate offloaded to disk (device_map) are read back one module at a time, so a
        sharded or offloaded load has the fingerprint of the same weights loaded whole.
        """
        h = hashlib.blake2b(digest_size=16)
        config = getattr(self.model, "config", None)
        h.update(type(self.model).__name__.encode())
        if config is not None and hasattr(config, "to_dict"):
            h.update(json.dumps(config.to_dict(), sort_keys=True, default=str).encode())
        state = self.model.state_dict()
        offloaded = _offloaded_digests(self.model, state)
        for name, tensor in state.items():
            h.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            h.update(offloaded[name] if tensor.device.type == "meta" else _tensor_digest(tensor))
        return h.hexdigest()

    @property
    def pad_id(self) -> int:
        config = getattr(self.model, "config", None)
        for candidate in (getattr(config, "pad_token_id", None), getattr(self.tokenizer, "pad_token_id", None)):
            if isinstance(candidate, int):
                return candidate
        return 0

    @property
    def max_length(self) -> int | None:
        return config_int(self.model, "max_position_embeddings", "n_positions")

    @property
    def vocab_size(self) -> int | None:
        return config_int(self.model, "vocab_size")

    def encode(self, examples: Sequence[str] | Sequence[Sequence[int]] | Inputs) -> Inputs:
        """Texts (needs a tokenizer) or token-id lists to right-padded Inputs, validated."""
        if isinstance(examples, Inputs):
            inputs = examples
        else:
            examples = list(examples)
            if not examples:
                raise ConceptError("no inputs: the dataset is empty")
            if all(isinstance(e, str) for e in examples):
                if self.tokenizer is None:
                    raise ConceptError(
                        f"subject {self.id!r} has no tokenizer, so text inputs cannot be encoded; "
                        "pass token-id lists, or load the subject with tokenizer=..."
                    )
                ids = [self.tokenizer(text, add_special_tokens=True)["input_ids"] for text in examples]
                inputs = pad_token_lists(ids, self.pad_id, texts=examples)
            else:
                inputs = pad_token_lists([list(map(int, e)) for e in examples], self.pad_id)
        self._check_fits(inputs)
        return inputs

    def _check_fits(self, inputs: Inputs) -> None:
        vocab, limit = self.vocab_size, self.max_length
        real = inputs.input_ids[inputs.attention_mask.bool()]
        if vocab is not None and real.numel() and (real.max() >= vocab or real.min() < 0):
            bad = int(((inputs.input_ids >= vocab) | (inputs.input_ids < 0)).any(dim=1).nonzero()[0])
            raise ConceptError(
                f"example {bad} has token ids outside the vocabulary of {self.id!r} (0..{vocab - 1}); "
                "was it encoded with another model's tokenizer?"
            )
        if limit is not None and inputs.input_ids.shape[1] > limit:
            too_long = (inputs.lengths > limit).nonzero().flatten().tolist()
            raise ConceptError(
                f"examples {too_long[:5]} are longer than the context of {self.id!r} "
                f"({limit} tokens); shorten them"
            )


def _tensor_digest(tensor: torch.Tensor) -> bytes:
    data = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
    return hashlib.blake2b(data.tobytes(), digest_size=16).digest()


def _offloaded_digests(model: nn.Module, state: dict) -> dict[str, bytes]:
    """Digests of the tensors accelerate keeps off the model (on the meta device), by state-dict name."""
    if not any(t.device.type == "meta" for t in state.values()):
        return {}
    from accelerate.utils import align_module_device

    digests = {}
    for prefix, module in model.named_modules():
        own = list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False))
        if not any(t.device.type == "meta" for _, t in own):
            continue
        with align_module_device(module, execution_device="cpu"):  # onloads, then offloads again
            for name, tensor in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
                digests[f"{prefix}.{name}" if prefix else name] = _tensor_digest(tensor)
    return digests


def load_subject(
    spec: "str | os.PathLike | nn.Module | Subject",
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

    ``spec`` is a directory written by ``save_pretrained``, a hub id, ``fixture:NAME`` from the
    zoo, or an in-memory ``nn.Module``. Safetensors only unless ``allow_pickle``; remote code only
    if ``trust_remote_code``. The model is put in eval mode on ``device`` with gradients off.

    ``device_map`` ("auto", "balanced", "sequential" or a dict of module -> device, as accelerate
    takes it) shards a model too large for one device across GPUs, the CPU and ``offload_dir`` on
    disk, instead of ``device``; it needs the ``accelerate`` package. ``dtype`` ("bfloat16",
    "float16", "float32") is the dtype the weights are loaded in; captured activations always come
    back as float32 on the CPU.
    """
    if isinstance(spec, Subject):
        return spec
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
    """The device the token ids go to: where the input embeddings run (the CPU when offloaded)."""
    placement = getattr(model, "hf_device_map", None) or {}
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    for name, module in model.named_modules():
        if module is embeddings:
            where = next((d for prefix, d in placement.items() if name == prefix or name.startswith(f"{prefix}.")
                          or prefix == ""), None)
            if isinstance(where, int) or (isinstance(where, str) and where.startswith("cuda")):
                return torch.device(f"cuda:{where}" if isinstance(where, int) else where)
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


def _is_hub_id(text: str) -> bool:
    return bool(_HUB_ID.match(text)) and not text.startswith((".", "/", "~"))


def _check_weights(directory: Path, allow_pickle: bool) -> None:
    files = [p.name for p in directory.iterdir() if p.is_file()]
    safe = [f for f in files if f.endswith(".safetensors") or f.endswith(".safetensors.index.json")]
    pickled = [f for f in files if f.endswith(_PICKLE_SUFFIXES) and f not in _TOKENIZER_FILES]
    if safe:
        return
    if pickled and not allow_pickle:
        raise ModelLoadError(
            f"{directory} holds only pickle checkpoints ({', '.join(sorted(pickled))}); loading a pickle "
            "can run arbitrary code. Convert it to safetensors, or pass allow_pickle=True "
            "(--audit-allow-pickle) if you trust it"
        )
    if not pickled:
        raise ModelLoadError(f"{directory} has no model weights (*.safetensors); is it a save_pretrained directory?")


def _load_pretrained(source, tokenizer, kind, dtype, allow_pickle, trust_remote_code, placement=None):
    import transformers

    directory = Path(source).expanduser()
    is_local = directory.is_dir()
    if not is_local:
        if directory.exists():
            raise ModelLoadError(f"{source} is a file; a model is a directory written by save_pretrained")
        if not _is_hub_id(source):
            raise ModelLoadError(f"no model directory at {source} (and it is not a hub id like 'org/name')")
    else:
        if not (directory / "config.json").is_file():
            raise ModelLoadError(f"{directory} has no config.json; is it a save_pretrained directory?")
        _check_weights(directory, allow_pickle)
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
        raise ModelLoadError(
            f"cannot load {source!r}: it is not a local directory, and the hub gave no model for it "
            f"(offline or unknown id). Detail: {str(exc).splitlines()[0]}"
        ) from exc
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
            model = auto.from_pretrained(where, config=config, **options)
    except pickle.UnpicklingError as exc:
        raise ModelLoadError(
            f"{source}: the pickle checkpoint holds more than tensors, and auditlens reads pickles with "
            f"torch.load(weights_only=True) even when allowed, so it was not run. {str(exc).splitlines()[0][:120]}"
        ) from exc
    except (OSError, ValueError, EnvironmentError) as exc:
        hint = "" if allow_pickle else " (only safetensors weights are read unless allow_pickle=True)"
        raise ModelLoadError(f"cannot load the weights of {source}{hint}: {str(exc).splitlines()[0]}") from exc
    if tokenizer is None and (not is_local or any((directory / f).exists() for f in _TOKENIZER_FILES)):
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(where, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load the tokenizer of {source}: {str(exc).splitlines()[0]}") from exc
    return model, tokenizer, kind
