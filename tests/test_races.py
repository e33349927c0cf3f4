"""Several processes at once: zoo builds, rebuilds under readers, report writers (issue 16: 8, 9, 12).
Each scenario runs real processes, started together."""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

TOY = """
import os, sys, time
from pathlib import Path
from auditlens.zoo.registry import Organism, build, register, resolve_fixture

def builder(directory, seed):
    with open(os.environ["BUILD_LOG"], "a") as log:
        log.write(f"{os.getpid()}\\n")
    (directory / "weights").write_text("half")
    time.sleep(1)  # a build takes a while: the others arrive meanwhile
    (directory / "weights").write_text(f"whole {seed}")
    return {}

register(Organism(name="toy", family="toy", description="", truth="learned", seed=1, build=builder))
time.sleep(max(0.0, float(os.environ["START_AT"]) - time.time()))  # imports done: all start together
"""


def start(code: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(processes) -> list[str]:
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=240)
        assert process.returncode == 0, err[-2000:]
        outputs.append(out)
    return outputs


@pytest.fixture
def zoo(tmp_path):
    return {"AUDITLENS_ZOO_CACHE": str(tmp_path / "zoo"), "BUILD_LOG": str(tmp_path / "builds.log"),
            "START_AT": str(time.time() + 12)}


def test_simultaneous_first_builds_build_once_and_all_succeed(zoo, tmp_path):
    reader = TOY + """
directory, _ = resolve_fixture("toy")
print((directory / "weights").read_text())
"""
    outputs = finish([start(reader, zoo) for _ in range(4)])
    assert [o.strip() for o in outputs] == ["whole 1"] * 4
    assert len(Path(zoo["BUILD_LOG"]).read_text().split()) == 1
    assert not list((tmp_path / "zoo").glob("*staging*"))


def test_a_forced_rebuild_never_pulls_the_organism_from_under_a_reader(zoo, tmp_path):
    finish([start(TOY + "build(resolve_fixture.__globals__['get']('toy'))", {**zoo, "START_AT": "0"})])
    rebuilder = TOY + """
from auditlens.zoo.registry import get
for _ in range(8):
    build(get("toy"), force=True)
"""
    reader = TOY + """
import time
misses, reads, stop = 0, 0, time.time() + 4
while time.time() < stop:
    try:
        directory, metadata = resolve_fixture("toy")
        assert (directory / "weights").read_text() == "whole 1" and metadata["seed"] == 1
        reads += 1
    except Exception as exc:
        misses += 1
print(misses, reads)
"""
    outputs = finish([start(rebuilder, zoo), start(reader, zoo), start(reader, zoo)])
    for misses, reads in (map(int, o.split()) for o in outputs[1:]):
        assert misses == 0 and reads > 10
    assert len(Path(zoo["BUILD_LOG"]).read_text().split()) == 9
    builds = list((tmp_path / "zoo").glob(".toy-*.build-*"))
    assert len(builds) >= 1 and all("half" not in (b / "weights").read_text() for b in builds)


def test_zoo_weights_do_not_depend_on_the_thread_count(tmp_path):
    """The same recipe trained with 1 and with 2 threads gives the same bytes."""
    code = """
import hashlib, sys, torch
from pathlib import Path
from auditlens.zoo import count_task
from auditlens.zoo.registry import Organism, build
torch.set_num_threads(int(sys.argv[1]))
organism = Organism(name="count-short", family="count", description="", truth="learned",
                    build=lambda d, seed: count_task.train_twin(d, seed, cheated=False, steps=60))
directory = build(organism)
print(hashlib.sha256((directory / "model.safetensors").read_bytes()).hexdigest())
"""
    hashes = []
    for threads in (1, 2):
        env = {**os.environ, "AUDITLENS_ZOO_CACHE": str(tmp_path / f"zoo{threads}")}
        out = subprocess.run([sys.executable, "-c", code, str(threads)], env=env, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        hashes.append(out.stdout.strip())
    assert hashes[0] == hashes[1]


def report_for(seed: int) -> dict:
    from auditlens.report import build_report

    record = {"nodeid": f"a.py::t[m{seed}]", "name": "t", "model": f"m{seed}", "outcome": "passed", "results": []}
    return build_report([record], {"seed": seed, "auditlens": "x"})


def seeds_in(directory: Path) -> set[int]:
    """The seed each of the three files was written with."""
    import re

    return {json.loads((directory / "report.json").read_text())["run"]["seed"],
            int(re.search(r"seed (\d+),", (directory / "summary.md").read_text()).group(1)),
            int(re.search(r"seed (\d+) ", (directory / "report.html").read_text()).group(1))}


def test_a_session_writing_while_another_is_halfway_never_mixes_their_files(tmp_path, monkeypatch):
    """Session B writes its whole report while session A is between files: A's three files or B's."""
    from auditlens.report import html, write_report

    real, out = html.render_html, tmp_path / "out"

    def render_while_another_session_writes(report):
        if report["run"]["seed"] == 1:
            write_report(report_for(2), out)  # B comes and goes while A is halfway
        return real(report)

    monkeypatch.setattr(html, "render_html", render_while_another_session_writes)
    write_report(report_for(1), out)
    assert seeds_in(out) == {1}
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "report.html", "report.json", "summary.md"] and not list(out.glob(".report-*"))


def test_a_writer_waits_for_the_one_holding_the_report_directory(tmp_path):
    import threading

    from filelock import FileLock

    from auditlens.report import write_report
    from auditlens.report.writers import lock_path

    out = tmp_path / "out"
    out.mkdir()
    with FileLock(lock_path(out)):
        writer = threading.Thread(target=write_report, args=(report_for(3), out))
        writer.start()
        time.sleep(1.0)
        assert not (out / "report.json").exists()  # still waiting
    writer.join(timeout=60)
    assert seeds_in(out) == {3}
