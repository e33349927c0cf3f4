"""The pytest plugin: thin glue between pytest's hooks and an :class:`~auditlens.session.AuditSession`.

Options become the session's options once, at configure time; the ``subject`` and concept fixtures,
YAML items and the xdist scheduler read the session; every finished audit becomes a record in it;
the session's ``finish()`` writes the report. The library never imports this package.
"""

from __future__ import annotations

import contextlib
import os
import types

import pytest

from ..declarative import SUFFIXES
from ..errors import AuditlensError
from ..session import AuditSession
from .interruption import handle_sigterm, restore_sigterm
from .items import AuditFile
from .options import SESSION_PLUGIN, add_options, concept_for, read_options, session_of, subject_for
from .rootdir import misread_model_path
from .run_hooks import SessionHooks
from .selection import mutation_hook, selects
from .shard import register_shard


def pytest_addoption(parser):
    add_options(parser)


def pytest_configure(config):
    config.addinivalue_line("markers", "models(*patterns): run this audit only against the models whose spec "
                                       "matches one of the patterns (fnmatch: 'fixture:count-*')")
    misread = misread_model_path(config)
    if misread:
        raise pytest.UsageError(misread)
    try:
        session = AuditSession(read_options(config), progress=_progress_line(config)).start()
    except AuditlensError as exc:
        raise pytest.UsageError(str(exc)) from None
    if not hasattr(config, "workerinput") and not config.option.collectonly:  # once, on the controller
        try:
            session.build_fixtures()
        except AuditlensError as exc:
            raise pytest.UsageError(str(exc)) from None
    _share_cores_among_workers(config)
    if not hasattr(config, "workerinput"):
        session.mutation = mutation_hook(config, session)
    register_shard(config, session)
    hooks = SessionHooks(session, config)
    if not hasattr(config, "workerinput"):  # the controller's SIGTERM ends the run with a report saying so
        hooks.previous_sigterm = handle_sigterm()
    config.pluginmanager.register(hooks, SESSION_PLUGIN)
    _register_concept_fixtures(config, session)


def pytest_unconfigure(config):
    hooks = config.pluginmanager.get_plugin(SESSION_PLUGIN)
    if hooks is not None:
        hooks.session.close()
        restore_sigterm(hooks.previous_sigterm)


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
    """Under loadgroup, our scheduler: each model's audits on one worker (see ``scheduling``)."""
    if config.getvalue("dist") != "loadgroup" or not config.getini("audit_group_by_model"):
        return None
    from .scheduling import ModelGroupScheduling

    session = session_of(config)
    return ModelGroupScheduling(config, log, models=session.options.models, seconds=session.previous_seconds())


def pytest_generate_tests(metafunc):
    if "subject" not in metafunc.fixturenames:
        return
    models = session_of(metafunc.config).options.models
    marker = metafunc.definition.get_closest_marker("models")
    chosen = [m for m in models if marker is None or selects(m, marker.args)]
    params = [pytest.param(model, id=model) for model in chosen]
    if not params:
        if marker is not None and models:
            reason = f"no model in this run matches models({', '.join(map(repr, marker.args))})"
            params = [pytest.param(None, id="no-matching-model", marks=pytest.mark.skip(reason=reason))]
        else:
            params = [pytest.param(None, id="no-model")]
    metafunc.parametrize("subject", params, indirect=True, scope="session")


@pytest.fixture(scope="session")
def subject(request):
    """The model under audit, loaded once per session per --model spec."""
    return subject_for(request.config, getattr(request, "param", None))


def pytest_collect_file(parent, file_path):
    return AuditFile.from_parent(parent, path=file_path) if file_path.name.endswith(SUFFIXES) else None


def _progress_line(config):
    """Progress lines written past pytest's output capture: zoo builds always, a check's steps with -v."""
    def write(message: str, detail: bool) -> None:
        if detail and config.option.verbose < 1:
            return
        capture = config.pluginmanager.getplugin("capturemanager")
        terminal = config.pluginmanager.getplugin("terminalreporter")
        if terminal is None:  # -p no:terminal
            return
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            terminal.ensure_newline()
            if terminal._tw.width_of_current_line:  # pytest-xdist's dots leave their line open
                terminal.write("\n")
            terminal.write_line(f"auditlens: {message}")  # on a line of its own

    return None if hasattr(config, "workerinput") else write  # xdist workers have no terminal of their own


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


# fixtures pytest, its common plugins and auditlens provide: a concept file must not shadow one
RESERVED_FIXTURES = frozenset({
    "subject", "request", "pytestconfig", "cache", "capsys", "capsysbinary", "capfd", "capfdbinary", "caplog",
    "doctest_namespace", "monkeypatch", "recwarn", "record_property", "record_xml_attribute",
    "record_testsuite_property", "tmp_path", "tmp_path_factory", "tmpdir", "tmpdir_factory", "pytester", "testdir",
    "worker_id", "testrun_uid", "subtests",
})


def _register_concept_fixtures(config, session) -> None:
    """One session fixture per concept file in ``audit_probes``, named after the file."""
    holder = types.ModuleType("auditlens_concepts")  # fixtures on a module, as in a conftest
    for path in session.concept_paths():
        if path.stem in RESERVED_FIXTURES:
            raise pytest.UsageError(f"{path}: a concept file cannot be named {path.stem!r}: that name is a fixture "
                                    "pytest or auditlens provides, which it would replace; rename the file")
        if path.stem.isidentifier():  # other names are still loadable with load_concept()
            setattr(holder, path.stem, _concept_fixture(path))
    config.pluginmanager.register(holder, "auditlens-concepts")


def _concept_fixture(path):
    def concept(request):
        return concept_for(request.config, path.stem)

    concept.__doc__ = f"The concept defined in {path}."
    return pytest.fixture(concept, scope="session", name=path.stem)
