"""The plugin's options, read once: command-line flags and ini keys become the session's options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ..errors import AuditlensError, ConceptError, ModelLoadError
from ..session import SessionOptions

SESSION_PLUGIN = "auditlens-session"


def add_options(parser) -> None:
    group = parser.getgroup("auditlens", "auditlens: audit models from the inside")
    group.addoption("--model", action="append", dest="audit_models", metavar="SPEC", default=None,
                    help="model to audit (repeatable): a save_pretrained dir, a hub id, fixture:NAME; every "
                         "audit that uses `subject` runs once per model. Default: ini audit_models.")
    group.addoption("--audit-report", dest="audit_report", metavar="DIR", default=None,
                    help="directory for the audit results (default: ini audit_report, else reports/).")
    group.addoption("--audit-seed", dest="audit_seed", type=int, metavar="N", default=None,
                    help="seed of every check (CV folds, control tasks, bootstrap, resampling). Default 0.")
    group.addoption("--audit-device", dest="audit_device", metavar="DEVICE", default=None,
                    help="device to load models on: cpu, cuda, cuda:N or auto (default: ini audit_device, else cpu).")
    group.addoption("--audit-dtype", dest="audit_dtype", metavar="DTYPE", default=None,
                    help="dtype to load the weights in: float32, bfloat16 or float16 (default: the checkpoint's, "
                         "as transformers loads it). Activations always come back as float32.")
    group.addoption("--audit-device-map", dest="audit_device_map", metavar="MAP", default=None,
                    help="shard each model with accelerate while loading: auto, balanced, sequential, or a JSON "
                         "object of module -> device; replaces --audit-device. Needs accelerate.")
    group.addoption("--audit-baseline", dest="audit_baseline", metavar="REPORT", default=None,
                    help="a previous report.json to compare this run with (deltas, new failures, verdict changes).")
    group.addoption("--audit-fail-on-regression", dest="audit_fail_on_regression", action="store_true", default=None,
                    help="fail the session when the comparison with --audit-baseline finds a regression.")
    group.addoption("--audit-regression-tolerance", dest="audit_regression_tolerance", type=float, metavar="X",
                    default=None, help="how far a metric may move the wrong way before it is a regression "
                                       "(default 0.02).")
    group.addoption("--audit-trust-remote-code", dest="audit_trust_remote_code", action="store_true", default=None,
                    help="let models run code from their repository (transformers' trust_remote_code). Off.")
    group.addoption("--audit-allow-pickle", dest="audit_allow_pickle", action="store_true", default=None,
                    help="load pickle checkpoints (can run arbitrary code). Off: safetensors only.")
    group.addoption("--audit-cache-dir", dest="audit_cache_dir", metavar="DIR", default=None,
                    help="keep captured activations on disk here, so a later session skips their forward passes.")
    group.addoption("--audit-mutants", dest="audit_mutants", type=int, metavar="N", default=0,
                    help="after the run, mutation-test the suite on each model it passed: N mutants per operator "
                         "(backdoor, shortcut, memorise, position-leak), each a fine-tuned copy with a planted cheat; "
                         "the report gets the mutation score. Default 0 (off).")
    group.addoption("--audit-mutant-operators", dest="audit_mutant_operators", metavar="OPS", default=None,
                    help="with --audit-mutants: the operators to plant, comma-separated (default all)")
    group.addoption("--audit-min-mutation-score", dest="audit_min_mutation_score", type=float, metavar="X",
                    default=None, help="with --audit-mutants: exit 8 unless every model's mutation score is at "
                                       "least X (0 to 1)")
    group.addoption("--audit-shard", dest="audit_shard", metavar="K/N", default=None,
                    help="run shard K of N (1 <= K <= N): each model's audits in one shard, split only when there "
                         "are fewer models than shards; the report is marked with the shard and the run's plan, "
                         "for `auditlens report merge`.")
    group.addoption("--audit-shard-costs", dest="audit_shard_costs", metavar="REPORT", default=None,
                    help="with --audit-shard: balance the shards by the audits' durations in this earlier "
                         "report.json (default: --audit-baseline's, else by audit count); every shard must get "
                         "the same one.")
    parser.addini("audit_group_by_model", type="bool", default=True,
                  help="with pytest-xdist: run each model's audits on one worker (--dist loadgroup by default)")
    parser.addini("audit_cache_dir", default="", help="on-disk activation cache directory (default: none)")
    parser.addini("audit_trust_remote_code", type="bool", default=False, help="trust_remote_code for every model")
    parser.addini("audit_allow_pickle", type="bool", default=False, help="allow pickle checkpoints")
    parser.addini("audit_baseline", default="", help="a previous report.json to compare with")
    parser.addini("audit_fail_on_regression", type="bool", default=False, help="fail the session on a regression")
    parser.addini("audit_regression_tolerance", default="0.02", help="metric tolerance of the regression gate")
    parser.addini("audit_models", type="linelist", default=[], help="models to audit when --model is not given")
    parser.addini("audit_report", default="reports", help="directory for the audit results")
    parser.addini("audit_seed", default="0", help="seed of every check")
    parser.addini("audit_device", default="cpu", help="device to load models on")
    parser.addini("audit_dtype", default="", help="dtype to load the weights in (float32, bfloat16, float16)")
    parser.addini("audit_device_map", default="", help="accelerate device_map for every model (auto, ...)")
    parser.addini("audit_probes", default="probes", help="directory of concept files (NAME.yaml -> fixture NAME)")


def _option(config, name: str):
    value = config.getoption(name)
    return value if value is not None else config.getini(name)


def _number(config, name: str, kind):
    value = _option(config, name)
    try:
        return kind(value)
    except (TypeError, ValueError):
        what = "an integer" if kind is int else "a number"
        raise pytest.UsageError(f"{name} must be {what}; got {value!r}") from None


def read_options(config) -> SessionOptions:
    """Flags first, then ini keys; a malformed value stops the run before any test (a usage error)."""
    try:
        device_map = parse_device_map(_option(config, "audit_device_map"))
    except AuditlensError as exc:
        raise pytest.UsageError(str(exc)) from None
    return SessionOptions(
        models=tuple(config.getoption("audit_models") or config.getini("audit_models")),
        report_dir=Path(_option(config, "audit_report")),
        probes_dir=Path(config.rootpath) / config.getini("audit_probes"),
        seed=_number(config, "audit_seed", int),
        device=_option(config, "audit_device"),
        dtype=_option(config, "audit_dtype") or None,
        device_map=device_map,
        trust_remote_code=bool(_option(config, "audit_trust_remote_code")),
        allow_pickle=bool(_option(config, "audit_allow_pickle")),
        cache_dir=_option(config, "audit_cache_dir") or None,
        baseline=_option(config, "audit_baseline") or None,
        fail_on_regression=bool(_option(config, "audit_fail_on_regression")),
        regression_tolerance=_number(config, "audit_regression_tolerance", float),
    )


def session_of(config):
    """The run's AuditSession (registered by the plugin at configure time)."""
    return config.pluginmanager.get_plugin(SESSION_PLUGIN).session


class ModelNotLoaded(pytest.fail.Exception):
    """An audit failed because its model could not be loaded: a usage error of the run (exit 4), not a
    finding about the model."""


def subject_for(config, model: str | None):
    """The session's Subject for ``model``; a clear test failure when there is none or it cannot load."""
    if model is None:
        pytest.fail("no model to audit: pass --model SPEC (repeatable) or set audit_models in "
                    "[tool.pytest.ini_options]", pytrace=False)
    try:
        return session_of(config).subject(model)
    except ModelLoadError as exc:
        text = str(exc)  # where the loader's message names the model already, as it stands
        raise ModelNotLoaded(text if model in text else f"cannot load model {model!r}: {text}", pytrace=False) from None
    except AuditlensError as exc:
        pytest.fail(f"cannot load model {model!r}: {exc}", pytrace=False)


def concept_for(config, name: str):
    """The session's concept ``name``; a broken concept file fails the audit with the file named."""
    try:
        return session_of(config).concept(name)
    except ConceptError as exc:
        pytest.fail(str(exc), pytrace=False)


DEVICE_MAP_EXAMPLE = '{"model.embed_tokens": 0, "model.layers": "cpu"}'


def parse_device_map(value: str | dict | None):
    """A strategy name as it is; a JSON object (module -> device) parsed; empty: None."""
    if not value or isinstance(value, dict) or not value.lstrip().startswith("{"):
        return value or None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise AuditlensError(f"--audit-device-map is not valid JSON ({exc}); give a strategy (auto, balanced, "
                             f"sequential) or an object such as '{DEVICE_MAP_EXAMPLE}'") from None
