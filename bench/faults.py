"""Faults and bad inputs, tried against auditlens as a user's machine would meet them (issue 16).

    python bench/faults.py [--quick]

Fault scenarios run real processes: a run interrupted by Ctrl-C and by SIGTERM, a run stopped by -x,
an xdist worker killed mid-audit, simultaneous first builds of an organism, a forced rebuild under
readers, a second session writing the report directory while the first is halfway, a full disk under
the report and under the activation cache, a forged cache entry, training with 1 and 2 threads.
A scenario *survives* when nothing is lost or forged: the report says what happened, nothing claims a
verdict it does not have, readers see whole organisms. Bad inputs are the cases of
tests/error_cases.py (each documented in docs/errors.md) plus a few more; one is *clear* when it
ends in an AuditlensError (a message naming the file, key or site), not a bare traceback.

Last line: ``faults: S survived / T tried; bad inputs: C clear / B tried``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

FOUR_AUDITS = """
import os, signal
def test_1(subject): pass
def test_2(subject): pass
def test_3(subject): {stop}
def test_4(subject): pass
"""


def repo(scratch: Path, audit: str) -> Path:
    """A user's repository: the count concepts and one audit file."""
    path = Path(tempfile.mkdtemp(dir=scratch))
    shutil.copytree(ROOT / "probes", path / "probes")
    (path / "test_audit.py").write_text(textwrap.dedent(audit))
    return path


def pytest_run(path: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--model", "fixture:count-learned", *args]
    env = {**os.environ, "KILL_FLAG": str(path / "killed-once")}  # the worker is killed the first time only
    return subprocess.run(command, cwd=path, capture_output=True, text=True, timeout=600, env=env)


def report_of(path: Path) -> dict:
    return json.loads((path / "reports" / "report.json").read_text())


def interrupted(stop: str, *args: str):
    def scenario(scratch: Path) -> str | None:
        path = repo(scratch, FOUR_AUDITS.format(stop="pass"))
        pytest_run(path)  # a complete run first: its report says "learned"
        (path / "test_audit.py").write_text(textwrap.dedent(FOUR_AUDITS.format(stop=stop)))
        pytest_run(path, *args)
        report = report_of(path)
        model = report["models"][0]
        if not report["run"].get("interrupted") or model["verdict"] != "inconclusive" or len(model["not_run"]) < 1:
            return f"report claims {model['verdict']!r} (interrupted: {report['run'].get('interrupted')!r})"
        return None
    return scenario


def worker_killed(scratch: Path) -> str | None:
    path = repo(scratch, """
        import os, signal
        from pathlib import Path
        import pytest

        @pytest.fixture
        def dies():
            flag = Path(os.environ["KILL_FLAG"])
            if not flag.exists():
                flag.write_text("")
                os.kill(os.getpid(), signal.SIGKILL)

        def test_1(subject, dies): pass
        def test_2(subject): pass
        """)
    pytest_run(path, "-n", "1")
    if not (path / "killed-once").exists():
        return "the worker was never killed"
    audits = report_of(path)["models"][0]["audits"]
    ids = [a["nodeid"] for a in audits]
    if len(ids) != len(set(ids)) or len(ids) != 2:
        return f"{len(ids)} entries for 2 audits"
    return None


TOY = """
import os, sys, time
from auditlens.zoo.registry import Organism, build, get, register, resolve_fixture

def builder(directory, seed):
    with open(os.environ["BUILD_LOG"], "a") as log:
        log.write("built\\n")
    (directory / "weights").write_text("half")
    time.sleep(1)
    (directory / "weights").write_text("whole")
    return {}

register(Organism(name="toy", family="toy", description="", truth="learned", build=builder))
time.sleep(max(0.0, float(os.environ.get("START_AT", "0")) - time.time()))
"""


def processes(codes: list[str], env: dict) -> list[str]:
    running = [subprocess.Popen([sys.executable, "-c", code], env={**os.environ, **env}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for code in codes]
    outputs = []
    for process in running:
        out, err = process.communicate(timeout=300)
        outputs.append(out if process.returncode == 0 else f"ERROR {err.strip().splitlines()[-1:]}")
    return outputs


def zoo_env(scratch: Path) -> dict:
    where = Path(tempfile.mkdtemp(dir=scratch))
    return {"AUDITLENS_ZOO_CACHE": str(where / "zoo"), "BUILD_LOG": str(where / "log"),
            "START_AT": str(time.time() + 12)}


def simultaneous_builds(scratch: Path) -> str | None:
    env = zoo_env(scratch)
    read = TOY + "d, _ = resolve_fixture('toy'); print((d / 'weights').read_text())"
    outputs = processes([read] * 3, env)
    builds = Path(env["BUILD_LOG"]).read_text().count("built")
    if any(o.strip() != "whole" for o in outputs) or builds != 1:
        return f"readers got {outputs}, {builds} builds"
    return None


def rebuild_under_readers(scratch: Path) -> str | None:
    env = zoo_env(scratch)
    processes([TOY + "build(get('toy'))"], {**env, "START_AT": "0"})
    rebuild = TOY + "[build(get('toy'), force=True) for _ in range(6)]"
    read = TOY + textwrap.dedent("""
        misses, stop = 0, time.time() + 4
        while time.time() < stop:
            try:
                d, _ = resolve_fixture('toy')
                assert (d / 'weights').read_text() == 'whole'
            except Exception:
                misses += 1
        print(misses)
        """)
    outputs = processes([rebuild, read, read], env)
    if any(o.strip() != "0" for o in outputs[1:]):
        return f"readers missed the organism: {outputs[1:]}"
    return None


def report(seed: int) -> dict:
    from auditlens.report import build_report

    record = {"nodeid": f"a.py::t[m{seed}]", "name": "t", "model": f"m{seed}", "outcome": "passed", "results": []}
    return build_report([record], {"seed": seed, "auditlens": "bench"})


def concurrent_report_writers(scratch: Path) -> str | None:
    from auditlens.report import html, write_report

    out, real = Path(tempfile.mkdtemp(dir=scratch)), html.render_html

    def meanwhile(data):
        if data["run"]["seed"] == 1:
            write_report(report(2), out)  # another session writes its whole report while this one is halfway
        return real(data)

    html.render_html = meanwhile
    try:
        write_report(report(1), out)
    finally:
        html.render_html = real
    seeds = {json.loads((out / "report.json").read_text())["run"]["seed"],
             1 if "seed 1," in (out / "summary.md").read_text() else 2,
             1 if "seed 1 " in (out / "report.html").read_text() else 2}
    return None if len(seeds) == 1 else "report.json, summary.md and report.html come from different sessions"


def full_disk_under_the_report(scratch: Path) -> str | None:
    from auditlens.report import writers

    out = Path(tempfile.mkdtemp(dir=scratch))
    writers.write_report(report(1), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = writers._write_synced

    def no_space(path, text):
        if path.name == "report.html":
            raise OSError(28, "No space left on device")
        real(path, text)

    writers._write_synced = no_space
    try:
        writers.write_report(report(2), out)
        return "a failed write went unnoticed"
    except writers.ReportWriteError:
        pass
    finally:
        writers._write_synced = real
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    return None if after == before else "the previous report was half replaced"


def _subject_and_inputs():
    from auditlens import load_subject
    from tiny_models import build, ragged_token_lists

    subject = load_subject(build("gpt2"))
    return subject, subject.encode(ragged_token_lists())


def full_disk_under_the_cache(scratch: Path) -> str | None:
    import warnings

    import auditlens.storage.disk as disk
    from auditlens import ActivationCache, capture

    subject, inputs = _subject_and_inputs()
    real = disk.save_file
    disk.save_file = lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left on device"))
    try:
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            value = capture(subject, inputs, "layer:0", cache=ActivationCache(directory=str(scratch / "cache")))
    finally:
        disk.save_file = real
    return None if value.shape[0] == len(inputs) else "the capture failed"


def forged_cache_entry(scratch: Path) -> str | None:
    import hashlib
    import warnings

    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    from auditlens import ActivationCache, capture

    directory = scratch / "forged"
    subject, inputs = _subject_and_inputs()
    clean = capture(subject, inputs, "layer:1", cache=ActivationCache(directory=str(directory)))
    (entry,) = directory.rglob("*.safetensors")
    with safe_open(str(entry), framework="pt") as handle:
        metadata = handle.metadata()
    forged = torch.zeros_like(clean)
    digest = hashlib.sha256(forged.view(torch.uint8).numpy().tobytes()).hexdigest()
    save_file({"value": forged}, str(entry), metadata={**metadata, "sha256": digest})
    subject, inputs = _subject_and_inputs()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        again = capture(subject, inputs, "layer:1", cache=ActivationCache(directory=str(directory)))
    return None if torch.equal(again, clean) else "the forged entry was used"


def thread_count(scratch: Path) -> str | None:
    code = textwrap.dedent("""
        import hashlib, sys, torch
        from auditlens.zoo import count_task
        from auditlens.zoo.registry import Organism, build
        torch.set_num_threads(int(sys.argv[1]))
        o = Organism(name="short", family="count", description="", truth="learned",
                     build=lambda d, seed: count_task.train_twin(d, seed, cheated=False, steps=40))
        print(hashlib.sha256((build(o) / "model.safetensors").read_bytes()).hexdigest())
        """)
    hashes = []
    for threads in (1, 2):
        env = {**os.environ, "AUDITLENS_ZOO_CACHE": str(scratch / f"threads{threads}")}
        out = subprocess.run([sys.executable, "-c", code, str(threads)], env=env, capture_output=True, text=True,
                             timeout=300)
        hashes.append(out.stdout.strip() or out.stderr[-200:])
    return None if hashes[0] == hashes[1] else "1 and 2 threads trained different weights"


FAULTS = {
    "Ctrl-C after two audits": interrupted("raise KeyboardInterrupt"),
    "SIGTERM after two audits": interrupted("os.kill(os.getpid(), signal.SIGTERM)"),
    "-x after a failure": interrupted("assert False", "-x"),
    "xdist worker killed mid-audit": worker_killed,
    "three first builds at once": simultaneous_builds,
    "forced rebuild under two readers": rebuild_under_readers,
    "two sessions writing one report directory": concurrent_report_writers,
    "full disk under the report": full_disk_under_the_report,
    "full disk under the activation cache": full_disk_under_the_cache,
    "forged cache entry (checksum recomputed)": forged_cache_entry,
    "training with 1 and 2 threads": thread_count,
}
QUICK = ("two sessions writing one report directory", "full disk under the report",
         "full disk under the activation cache", "forged cache entry (checksum recomputed)")


def extra_bad_inputs() -> list[tuple[str, object]]:
    """Bad inputs of issue 16 beyond the documented table."""
    from auditlens import load_concept, load_subject
    from auditlens.report import read_report
    from tiny_models import build

    def index_naming_a_pickle():
        path = Path("model")
        build("gpt2").save_pretrained(path)
        (path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "pytorch_model.bin"}}))
        load_subject(path)

    def index_naming_a_file_outside():
        path = Path("model")
        build("gpt2").save_pretrained(path)
        (path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "../../x.safetensors"}}))
        load_subject(path)

    def concept_reading_etc_passwd():
        Path("c.yaml").write_text("file: /etc/passwd\n")
        load_concept("c.yaml")

    def report_with_a_string_metric():
        Path("r.json").write_text(json.dumps({"schema": "auditlens.report/2", "run": {}, "models": [
            {"id": "m", "verdict": "learned", "audits": [{"nodeid": "t", "outcome": "passed",
                                                          "metrics": {"acc": "high"}}]}]}))
        read_report("r.json")

    def report_is_a_directory_without_one():
        Path("empty").mkdir()
        read_report("empty")

    return [("an index naming a pickle", index_naming_a_pickle),
            ("an index naming a file outside", index_naming_a_file_outside),
            ("a concept reading /etc/passwd", concept_reading_etc_passwd),
            ("a report with a string metric", report_with_a_string_metric),
            ("a report directory without a report", report_is_a_directory_without_one)]


@contextlib.contextmanager
def silenced():
    """Library chatter (transformers' load reports, progress bars) kept off the bench's output."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def try_bad_input(case) -> str | None:
    from auditlens import AuditlensError

    try:
        with silenced():
            case()
    except AuditlensError:
        return None
    except Exception as exc:  # a bare traceback is what this bench exists to find
        return f"{type(exc).__name__}: {str(exc)[:160]}"
    return "no error at all"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the in-process fault scenarios")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import error_cases

    survived, tried = 0, 0
    with tempfile.TemporaryDirectory() as scratch:
        for name, scenario in FAULTS.items():
            if args.quick and name not in QUICK:
                continue
            tried += 1
            started = time.perf_counter()
            try:
                problem = scenario(Path(scratch))
            except Exception:
                problem = "crashed: " + traceback.format_exc().strip().splitlines()[-1]
            survived += problem is None
            print(f"{'survived' if problem is None else 'LOST    '}  {name} ({time.perf_counter() - started:.0f} s)"
                  + (f": {problem}" if problem else ""), flush=True)
        clear, bad = 0, 0
        home = os.getcwd()
        for name, case in [*error_cases.CASES, *extra_bad_inputs()]:
            case_dir = tempfile.mkdtemp(dir=scratch)
            os.chdir(case_dir)
            try:
                problem = try_bad_input(case)
            finally:
                os.chdir(home)
            bad += 1
            clear += problem is None
            if problem:
                print(f"UNCLEAR   {name}: {problem}")
    print(f"faults: {survived} survived / {tried} tried; bad inputs: {clear} clear / {bad} tried")
    return 0 if survived == tried and clear == bad else 1


if __name__ == "__main__":
    sys.exit(main())
