"""A DAS in the report: a sweep drawn as IIA per site beside its shuffled-label control (as a probe sweep
draws accuracy beside its control task), and the learned directions saved beside the report as
safetensors when a result is recorded, named in its JSON entry and linked from the HTML."""

import json
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from safetensors import safe_open

from auditlens import das
from auditlens.report.figures import figure_for
from auditlens.report.tensors import recorded_results
from auditlens.session import AuditSession, SessionOptions

PROBES = Path(__file__).parent.parent / "probes"
MODEL = "fixture:count-learned"
STEPS = 20  # enough for the count's 1-d subspace after block 0 to show; the numbers are not what is tested here


@pytest.fixture(scope="module")
def sweep(learned, concepts):
    return das(learned, concepts["count_swapped"], at="layer:*", max_steps=STEPS)


@pytest.fixture(scope="module")
def single(learned, concepts):
    return das(learned, concepts["count_swapped"], at="layer:0", max_steps=STEPS)


@pytest.fixture
def drawn(monkeypatch):
    """The figures the report draws, as matplotlib figures rather than PNG text, to read what they show."""
    figures = []
    monkeypatch.setattr("auditlens.report.figures._png", lambda figure: figures.append(figure) or "data:,")
    yield figures
    for figure in figures:
        plt.close(figure)


def session_report(tmp_path, name, result, expect):
    """Record ``result`` in a session writing into ``tmp_path``; its report, as written."""
    session = AuditSession(SessionOptions(models=(MODEL,), report_dir=tmp_path))
    session.record(name, MODEL, result, expect=expect)
    session.finish()
    return json.loads((tmp_path / "report.json").read_text()), (tmp_path / "report.html").read_text()


def test_a_das_sweep_is_drawn_as_iia_per_site_beside_the_shuffled_label_control(sweep, drawn):
    # given a sweep's record, when the report draws it
    check = sweep.to_dict()
    figure_for(check)
    # then one curve: IIA per site, in sweep order, beside the control's IIA, the measured series first
    (figure,) = drawn
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.get_xticklabels()] == ["embed", "layer:0", "layer:1"]
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["IIA (held-out pairs)",
                                                                     "control (shuffled labels)"]
    iia = axes.containers[0].lines[0].get_ydata()
    (control,) = [line for line in axes.lines if line.get_label() == "control (shuffled labels)"]
    assert list(iia) == [float(r.iia) for r in sweep.results]
    assert list(control.get_ydata()) == [float(r.control_iia) for r in sweep.results]


def test_a_single_das_result_is_drawn_as_its_iia_beside_its_controls(single, drawn):
    figure_for(single.to_dict())
    (figure,) = drawn
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["iia", "control iia"]


def test_a_probe_sweep_written_before_the_curve_tag_is_still_drawn_as_its_curve(drawn):
    point = {"site": "layer:0", "metrics": {"accuracy": 0.9, "control_accuracy": 0.5, "chance": 0.5}, "intervals": {}}
    figure_for({"check": "probe", "site": "layer:*", "concept": "c", "metrics": {}, "curve": [point]})
    assert [t.get_text() for t in drawn[0].axes[0].get_legend().get_texts()] == ["probe", "control task", "chance"]


def test_recording_a_das_sweep_saves_each_sites_directions_beside_the_report(sweep, tmp_path):
    # given a sweep recorded in a session, when the session writes its report
    report, _ = session_report(tmp_path, "the count is a variable", sweep, {"best_iia": ">= 0.5"})
    (check,) = report["models"][0]["audits"][0]["checks"]
    # then each site's entry names its file, relative to the report directory, and the file holds its directions
    for result, entry in zip(sweep.results, check["per_site"]):
        assert entry["tensors_file"] == f"das/script_the_count_is_a_variable_fixture_count-learned__" \
                                        f"{result.site.replace(':', '_')}.safetensors"
        assert entry["tensors"] == {"directions": [1, 64]} == {"directions": entry["directions_shape"]}
        with safe_open(str(tmp_path / entry["tensors_file"]), framework="pt") as saved:
            assert list(saved.keys()) == ["directions"]
            assert saved.get_tensor("directions").shape == (1, 64)
            assert (saved.get_tensor("directions") == result.directions).all()
            metadata = saved.metadata()
        assert metadata["format"] == "auditlens.das/1" and metadata["site"] == result.site
        assert metadata["concept"] == "count_swapped" and metadata["dim"] == "1"
        assert float(metadata["iia"]) == pytest.approx(float(result.iia), abs=1e-6)
        assert metadata["audit"] == "script::the count is a variable[fixture:count-learned]"
    assert "tensors_file" not in check  # the sweep itself keeps no tensor: its sites do
    assert sorted(p.name for p in tmp_path.iterdir()) == ["das", "report.html", "report.json", "summary.md"]


def test_the_html_lists_each_site_with_both_series_and_links_its_directions(sweep, tmp_path):
    _, page = session_report(tmp_path, "the count is a variable", sweep, {"best_iia": ">= 0.5"})
    table = page.split('<table class="per-site">')[1].split("</table>")[0]
    assert '<th class="num">iia</th><th class="num">control iia</th>' in table
    rows = table.split("<tr>")[2:]
    assert [row.split("<code>")[1].split("</code>")[0] for row in rows] == ["embed", "layer:0", "layer:1"]
    assert all(f"{float(r.control_iia):.3f}" in row for r, row in zip(sweep.results, rows))
    assert table.count('<a href="das/script_the_count_is_a_variable_fixture_count-learned__') == 3
    assert page.count('alt="das figure"') == 1  # the curve, not the bars of best_iia and best_selectivity


def test_a_single_das_result_names_and_links_its_file(single, tmp_path):
    report, page = session_report(tmp_path, "count at 0", single, {"iia": ">= 0.5"})
    (check,) = report["models"][0]["audits"][0]["checks"]
    assert check["tensors_file"] == "das/script_count_at_0_fixture_count-learned__layer_0.safetensors"
    assert (tmp_path / check["tensors_file"]).is_file()
    assert f'saved: <a href="{check["tensors_file"]}">' in page and "(directions 1×64; safetensors)" in page


def test_two_das_at_one_site_in_one_audit_keep_two_files(single, tmp_path):
    first, second = recorded_results([single, single], tmp_path, "t.py::test_twice[m]")
    assert first["tensors_file"] == "das/t.py_test_twice_m__layer_0.safetensors"
    assert second["tensors_file"] == "das/t.py_test_twice_m__layer_0-2.safetensors"
    assert len(list((tmp_path / "das").iterdir())) == 2


def test_directions_that_cannot_be_written_are_named_and_the_audit_stands(single, tmp_path):
    (tmp_path / "das").write_text("a file where the directory would be")
    (record,) = recorded_results([single], tmp_path, "t.py::test_x[m]")
    assert "tensors_file" not in record and record["tensors_not_saved"].startswith(str(tmp_path / "das"))
    assert record["metrics"]["iia"] == float(single.iia)


def test_a_yaml_das_audit_run_by_pytest_saves_its_directions_in_the_report_directory(audit_repo):
    # given a YAML das audit in a user's repository
    for suffix in (".yaml", ".jsonl"):
        shutil.copy(PROBES / f"count_swapped{suffix}", audit_repo.path / "probes")
    (audit_repo.path / "count.audit.yaml").write_text(
        "audits:\n  - name: the count at layer 0\n"
        f"    das: {{pairs: count_swapped, at: 'layer:0', dim: 1, max_steps: {STEPS}}}\n"
        "    expect: {iia: '>= 0.5'}\n")
    # when pytest runs it
    result = audit_repo.runpytest("count.audit.yaml", "--model", MODEL, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    # then the report's entry names the directions' file, which is in the report directory
    report = json.loads((audit_repo.path / "reports" / "report.json").read_text())
    (check,) = report["models"][0]["audits"][0]["checks"]
    assert check["tensors_file"].startswith("das/count.audit.yaml_the-count-at-layer-0")
    assert check["tensors_file"].endswith("_fixture_count-learned__layer_0.safetensors")
    with safe_open(str(audit_repo.path / "reports" / check["tensors_file"]), framework="pt") as saved:
        assert saved.get_tensor("directions").shape == (1, 64)
