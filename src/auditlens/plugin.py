"""pytest glue: options, the ``subject`` and concept fixtures, the ``models`` marker, evidence on failure,
and per-test results stored as plain data. The core never imports this module."""

from __future__ import annotations

import fnmatch
import json
import os
import time
import types
from collections.abc import Iterable
from pathlib import Path

import pytest

from .results import Metric, recording
from .settings import set_default_seed

RESULTS_KEY = pytest.StashKey[list]()
RECORDS_KEY = pytest.StashKey[list]()
SUBJECTS_KEY = pytest.StashKey[dict]()
WRITTEN_KEY = pytest.StashKey[str]()
LEAKS_KEY = pytest.StashKey[str]()
CONCEPTS_KEY = pytest.StashKey[dict]()
PASSES_KEY = pytest.StashKey[int]()
STARTED_KEY = pytest.StashKey[float]()
REPORT_KEY = pytest.StashKey[dict]()
BASELINE_ERROR_KEY = pytest.StashKey[str]()
RECORD_PROPERTY = "auditlens_record"


def pytest_addoption(parser):
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


def model_specs(config) -> list[str]:
    return list(config.getoption("audit_models") or config.getini("audit_models"))


def pytest_configure(config):
    config.addinivalue_line("markers", "models(*patterns): run this audit only against the models whose spec "
                                       "matches one of the patterns (fnmatch: 'fixture:count-*')")
    seed = _option(config, "audit_seed")
    try:
        set_default_seed(int(seed))
    except ValueError:
        raise pytest.UsageError(f"audit_seed must be an integer; got {seed!r}") from None
    _share_cores_among_workers(config)
    _device_map(_option(config, "audit_device_map"))  # a malformed map stops the run before any test
    cache_dir = _option(config, "audit_cache_dir")
    if cache_dir:
        from .capture import session_cache

        session_cache.use_directory(cache_dir)
    config.stash[RECORDS_KEY] = []
    config.stash[STARTED_KEY] = time.time()
    _CONFIG.append(config)
    config.stash[SUBJECTS_KEY] = {}
    config.stash[CONCEPTS_KEY] = {}
    _register_concept_fixtures(config)


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config):
    """With ``-n`` and no ``--dist``, distribute with ``loadgroup``: each model's audits on one worker,
    so every worker loads only its own models. A wrapper, so that it runs before pytest-xdist's own
    hook replaces "no" with its default, ``load``; an explicit ``--dist`` is left alone."""
    option = config.option
    if (getattr(option, "numprocesses", None) and getattr(option, "dist", None) == "no"
            and not getattr(option, "distload", False) and config.getini("audit_group_by_model")):
        option.dist = "loadgroup"
    return (yield)


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """Under loadgroup, our scheduler: each model's audits on one worker (see ``xdist_scheduling``)."""
    if config.getvalue("dist") != "loadgroup" or not config.getini("audit_group_by_model"):
        return None
    from .xdist_scheduling import ModelGroupScheduling

    return ModelGroupScheduling(config, log, models=model_specs(config), seconds=_previous_seconds(config))


def _previous_seconds(config) -> dict[str, float]:
    """Seconds per model in the previous report of this report directory: a scheduling hint only
    (none, or an unreadable one, leaves the scheduler counting tests instead)."""
    from .errors import AuditlensError
    from .report import read_report

    path = Path(_option(config, "audit_report")) / "report.json"
    try:
        report = read_report(path) if path.is_file() else None
    except AuditlensError:
        return {}
    if report is None:
        return {}
    return {m["id"]: sum(a.get("duration") or 0.0 for a in m["audits"]) for m in report["models"]}


def _item_model(item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("subject") if callspec else getattr(item, "model", None)  # YAML items: .model


def _plain_nodeid(nodeid: str) -> str:
    """The node id without the ``@group`` suffix pytest-xdist's loadgroup appends to it."""
    cut = nodeid.rfind("]") + 1
    return nodeid[:cut] if cut and nodeid[cut:].startswith("@") else nodeid


def _share_cores_among_workers(config) -> None:
    """In an xdist worker, torch gets its share of the cores: every worker running torch's default
    (one thread per core) oversubscribes the machine, which made ``-n 2`` three times slower than
    serial on two cores. Left alone when the user set OMP_NUM_THREADS."""
    workers = getattr(config, "workerinput", {}).get("workercount")
    if not workers or os.environ.get("OMP_NUM_THREADS"):
        return
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, cores // int(workers)))


def _register_concept_fixtures(config) -> None:
    """One session fixture per concept file in ``audit_probes``, named after the file."""
    from .data import concept_files

    directory = concept_directory(config)
    holder = types.ModuleType("auditlens_concepts")  # fixtures on a module, as in a conftest
    for path in concept_files(directory):
        if path.stem.isidentifier():  # other names are still loadable with load_concept()
            setattr(holder, path.stem, _concept_fixture(path))
    config.pluginmanager.register(holder, "auditlens-concepts")


def _concept_fixture(path: Path):
    def concept(request):
        return get_concept(request.config, path.stem)

    concept.__doc__ = f"The concept defined in {path}."
    return pytest.fixture(concept, scope="session", name=path.stem)


def pytest_generate_tests(metafunc):
    if "subject" not in metafunc.fixturenames:
        return
    specs = model_specs(metafunc.config)
    marker = metafunc.definition.get_closest_marker("models")
    if marker is not None:  # patterns, as in fnmatch: "fixture:count-*"
        specs = [s for s in specs if any(fnmatch.fnmatchcase(s, pattern) for pattern in marker.args)]
    params = [pytest.param(spec, id=spec) for spec in specs]
    if not params:
        if marker is not None and model_specs(metafunc.config):
            reason = f"no model in this run matches models({', '.join(map(repr, marker.args))})"
            params = [pytest.param(None, id="no-matching-model", marks=pytest.mark.skip(reason=reason))]
        else:
            params = [pytest.param(None, id="no-model")]
    metafunc.parametrize("subject", params, indirect=True, scope="session")


def get_subject(config, spec: str | None):
    """The Subject for ``spec``, loaded once per session; a clear failure when it cannot be."""
    if spec is None:
        pytest.fail("no model to audit: pass --model SPEC (repeatable) or set audit_models in "
                    "[tool.pytest.ini_options]", pytrace=False)
    loaded = config.stash[SUBJECTS_KEY]
    if spec not in loaded:
        from .errors import AuditlensError
        from .subject import load_subject

        try:
            loaded[spec] = load_subject(spec, device=_option(config, "audit_device"),
                                        dtype=_option(config, "audit_dtype") or None,
                                        device_map=_device_map(_option(config, "audit_device_map")),
                                        trust_remote_code=bool(_option(config, "audit_trust_remote_code")),
                                        allow_pickle=bool(_option(config, "audit_allow_pickle")))
        except AuditlensError as exc:
            pytest.fail(f"cannot load model {spec!r}: {exc}", pytrace=False)
    return loaded[spec]


def _device_map(value: str):
    """A strategy name as it is; a JSON object (module -> device) parsed."""
    if not value or not value.lstrip().startswith("{"):
        return value or None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise pytest.UsageError(f"--audit-device-map is not valid JSON ({exc}); give a strategy (auto, balanced, "
                    "sequential) or an object such as '{\"model.embed_tokens\": 0, \"model.layers\": \"cpu\"}'"
                                ) from None


def concept_directory(config) -> Path:
    return Path(config.rootpath) / config.getini("audit_probes")


def get_concept(config, name: str):
    """The concept file ``name`` of the probes directory, loaded once per session."""
    from .data import load_concept
    from .errors import ConceptError

    loaded = config.stash[CONCEPTS_KEY]
    if name not in loaded:
        try:
            loaded[name] = load_concept(_concept_path(concept_directory(config), name))
        except ConceptError as exc:
            pytest.fail(str(exc), pytrace=False)
    return loaded[name]


def _concept_path(directory: Path, name: str) -> Path:
    for suffix in (".yaml", ".yml"):
        if (directory / f"{name}{suffix}").is_file():
            return directory / f"{name}{suffix}"
    return directory / f"{name}.yaml"  # load_concept names it in its error


@pytest.fixture(scope="session")
def subject(request):
    """The model under audit, loaded once per session per --model spec."""
    return get_subject(request.config, getattr(request, "param", None))


def pytest_collect_file(parent, file_path):
    from .yaml_items import SUFFIXES, AuditFile

    if file_path.name.endswith(SUFFIXES):
        return AuditFile.from_parent(parent, path=file_path)
    return None


def _pass_counts(config) -> dict[str, tuple[int, int]]:
    """Per loaded model: forward passes executed so far, and how long its log of needs is."""
    return {spec: (s.forward_passes, len(s.needs)) for spec, s in config.stash.get(SUBJECTS_KEY, {}).items()}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    before = _pass_counts(item.config)
    try:
        with recording() as results:
            item.stash[RESULTS_KEY] = results
            return (yield)
    finally:
        executed, needs = 0, []
        for spec, subject in item.config.stash.get(SUBJECTS_KEY, {}).items():
            passes, logged = before.get(spec, (0, 0))
            executed += subject.forward_passes - passes
            needs += subject.needs[logged:]
        item.stash[PASSES_KEY] = (executed, list(dict.fromkeys(needs)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    results = item.stash.get(RESULTS_KEY, [])
    if call.when == "call" or (call.when == "setup" and report.outcome != "passed"):
        for result in results:  # junitxml writes the item's properties with its teardown report
            item.user_properties.append((f"auditlens.{result.check}.{result.site}", json.dumps(result.metrics())))
        if report.failed and results and not getattr(item, "explains_itself", False):
            report.sections.append(("auditlens evidence", "\n\n".join(r.explain() for r in results)))
        # carried on the report, so that xdist brings it to the controller like any report data
        record = _record(item, report, call, results)
        if record["model"] is not None:  # an audit (it ran against a model), not a plain test
            report.user_properties.append((RECORD_PROPERTY, json.dumps(record)))
    return report


def pytest_runtest_logreport(report):
    for name, value in report.user_properties:
        if name == RECORD_PROPERTY:
            _records_of(report).append(json.loads(value))
            return
    if report.failed and "crashed while running" in str(report.longrepr):
        # an xdist worker died mid-audit: keep the audit in the report, marked lost
        model = _model_from_nodeid(report.nodeid)
        if model is not None:
            nodeid = _plain_nodeid(report.nodeid)
            _records_of(report).append({
                "nodeid": nodeid, "name": nodeid.split("::")[-1], "file": report.location[0],
                "line": None, "model": model, "fingerprint": None, "truth": None, "outcome": "lost", "kind": "error",
                "when": report.when, "duration": report.duration, "forward_passes": 0, "results": [],
                "message": str(report.longrepr).strip().splitlines()[0][:500]})


def model_of(nodeid: str, models: Iterable[str]) -> str | None:
    """The model an audit's node id was parametrized with, if it is one of ``models``."""
    if not nodeid.endswith("]") or "[" not in nodeid:
        return None
    ids = nodeid[nodeid.rindex("[") + 1:-1]
    matches = [m for m in models if ids == m or ids.startswith(f"{m}-") or ids.endswith(f"-{m}") or f"-{m}-" in ids]
    return max(matches, key=len) if matches else None


def _model_from_nodeid(nodeid: str) -> str | None:
    """The model of an audit item from its id (``test_x[fixture:count-learned]``), if it has one."""
    config = _CONFIG[-1] if _CONFIG else None
    return model_of(_plain_nodeid(nodeid), model_specs(config)) if config is not None else None


_CONFIG: list = []  # the running config (logreport has no config argument)


def _records_of(report) -> list:
    return _CONFIG[-1].stash[RECORDS_KEY]


def _record(item, report, call, results) -> dict:
    model = _item_model(item)
    subject = item.config.stash[SUBJECTS_KEY].get(model) if model else None
    kind, outcome = None, report.outcome
    if hasattr(report, "wasxfail"):
        outcome = "xfailed" if report.skipped else "xpassed"
    if report.failed:  # an assertion is a finding about the model; any other exception is an error
        kind = "assertion" if call.when == "call" and call.excinfo.errisinstance(AssertionError) else "error"
    path, line, name = item.reportinfo()
    message = None
    if report.failed and call.excinfo is not None:
        text = str(call.excinfo.value).strip() or call.excinfo.typename
        message = text.splitlines()[0][:500]
    if path:
        path = Path(path)
        path = path.relative_to(item.config.rootpath) if path.is_relative_to(item.config.rootpath) else path
    return {"nodeid": _plain_nodeid(item.nodeid), "name": getattr(getattr(item, "spec", None), "name", None) or name,
            "file": str(path) if path else None, "line": None if line is None else line + 1,
            "model": model, "fingerprint": subject.fingerprint if subject else None,
            "truth": subject.metadata.get("truth") if subject else None,
            "outcome": outcome, "kind": kind, "when": report.when, "duration": report.duration,
            "forward_passes": item.stash.get(PASSES_KEY, (0, []))[0],
            "needs": item.stash.get(PASSES_KEY, (0, []))[1], "results": [r.to_dict() for r in results],
            "message": message}


def pytest_assertrepr_compare(config, op, left, right):
    metric = left if isinstance(left, Metric) else right if isinstance(right, Metric) else None
    if metric is None or not hasattr(metric, "result"):
        return None
    other = right if metric is left else left
    interval = metric.result.intervals().get(metric.name)
    value = f"{metric.name} = {float(metric):.4f}" + (f" ({int(interval.level * 100)}% CI {interval})" if interval else "")
    comparison = f"{value}, expected {op} {other}" if metric is left else f"expected {other} {op} {value}"
    return [comparison, metric.result.headline(), "(all the evidence: section 'auditlens evidence' below)"]


def pytest_unconfigure(config):
    if config in _CONFIG:
        _CONFIG.remove(config)


def pytest_sessionfinish(session):
    config = session.config
    _fail_on_leaked_hooks(session)
    records = config.stash.get(RECORDS_KEY, None)
    if not records or hasattr(config, "workerinput"):  # xdist workers send their records to the controller
        return
    from .report import build_report, compare_reports, read_report, write_report
    from .report.model import run_metadata

    started = config.stash.get(STARTED_KEY, time.time())
    loading = {"device": _option(config, "audit_device"), "dtype": _option(config, "audit_dtype") or None,
               "device_map": _device_map(_option(config, "audit_device_map"))}
    if loading["device_map"] is not None:
        loading["device"] = None  # the map placed every part
    report = build_report(records, run_metadata(int(_option(config, "audit_seed")), started, time.time() - started,
                                                loading),
                          order=model_specs(config))
    baseline = _option(config, "audit_baseline")
    if baseline:
        from .errors import AuditlensError

        try:
            tolerance = float(_option(config, "audit_regression_tolerance"))
            report["comparison"] = compare_reports(read_report(baseline), report, tolerance)
        except (AuditlensError, ValueError) as exc:
            config.stash[BASELINE_ERROR_KEY] = str(exc)
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
        else:
            if report["comparison"]["regressions"] and _option(config, "audit_fail_on_regression"):
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
    paths = write_report(report, Path(_option(config, "audit_report")))
    config.stash[WRITTEN_KEY] = str(paths["html"])
    config.stash[REPORT_KEY] = report


def _fail_on_leaked_hooks(session) -> None:
    """A hook of ours still on a model after the session means every later result is suspect."""
    from .hooks import live_hook_count

    leaked = {spec: live_hook_count(s.model) for spec, s in session.config.stash.get(SUBJECTS_KEY, {}).items()}
    leaked = {spec: count for spec, count in leaked.items() if count}
    if leaked:
        message = "; ".join(f"{spec}: {count} hooks" for spec, count in leaked.items())
        session.config.stash[LEAKS_KEY] = message
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config):
    leaks = config.stash.get(LEAKS_KEY, None)
    if leaks:
        terminalreporter.section("auditlens: hooks leaked", red=True)
        terminalreporter.write_line(f"auditlens hooks are still installed after the session ({leaks}); "
                                    "results of this run cannot be trusted", red=True)
    report = config.stash.get(REPORT_KEY, None)
    if report is None:
        return
    terminalreporter.section("auditlens verdicts")
    width = max((len(m["id"]) for m in report["models"]), default=0)
    for model in report["models"]:
        known = f"  (known truth: {model['truth']})" if model.get("truth") else ""
        colour = {"learned": {"green": True}, "cheated": {"red": True}}.get(model["verdict"], {"yellow": True})
        terminalreporter.write_line(f"{model['id']:<{width}}  {model['verdict']:<12} {model['reason']}{known}",
                                    **colour)
    error = config.stash.get(BASELINE_ERROR_KEY, None)
    if error:
        terminalreporter.write_line(f"baseline not compared: {error}", red=True)
    comparison = report.get("comparison")
    if comparison:
        from .report.compare import render_comparison

        terminalreporter.section("auditlens: against the baseline")
        for line in render_comparison(comparison).splitlines():
            terminalreporter.write_line(line, red=line.startswith("regressions: ") and line != "regressions: 0")
    terminalreporter.write_line(f"audit report: {config.stash.get(WRITTEN_KEY, '')}")
