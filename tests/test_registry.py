"""One registry of checks: a new check is its function and result type plus one entry, and the YAML
loader, its schema, the verdict and the report's figures all follow."""

import dataclasses
import textwrap

import pytest

from auditlens import registry
from auditlens.declarative import load_audit_file, schema
from auditlens.registry import RegisteredCheck
from auditlens.report.check_tags import BEFORE_TAGS, figure_metrics, is_mechanistic
from auditlens.report.figures import figure_for
from auditlens.report.verdict import verdict_for
from auditlens.results import CheckResult


@dataclasses.dataclass(frozen=True, kw_only=True)
class LensResult(CheckResult):
    """A check of our own: how much of the behaviour a lens recovers."""

    mechanistic = True
    figure_metrics = ("recovered",)

    concept: str = ""
    recovered: float = 0.0


def lens(subject, concept, at="layer:0"):
    return LensResult(check="lens", subject=subject.id, site=at, n=len(concept), concept=concept.name,
                      recovered=0.5)


@pytest.fixture
def with_lens(monkeypatch):
    entry = RegisteredCheck("lens", lens, LensResult, "concept", {
        "type": "object", "additionalProperties": False, "required": ["concept"],
        "properties": {"concept": {"$ref": "#/$defs/concept"}, "at": {"$ref": "#/$defs/site"}}})
    monkeypatch.setitem(registry.CHECKS, "lens", entry)
    return entry


def test_a_registered_check_can_be_declared_in_yaml(with_lens, tmp_path):
    path = tmp_path / "lens.audit.yaml"
    path.write_text(textwrap.dedent("""\
        audits:
          - name: the lens recovers the count
            lens: {concept: more_a_than_b, at: "layer:1"}
            expect: {recovered: ">= 0.9"}
        """))
    (entry,) = load_audit_file(path, {"more_a_than_b"})
    assert entry.check == "lens" and str(entry.expect["recovered"]) == ">= 0.9"
    assert "lens" in schema("audit")["$defs"]["entry"]["properties"]


def test_its_result_fields_are_what_yaml_may_expect(with_lens, tmp_path):
    from auditlens.declarative import AuditFileError

    path = tmp_path / "lens.audit.yaml"
    path.write_text("audits:\n  - name: x\n    lens: {concept: more_a_than_b}\n    expect: {recoverd: '>= 0.9'}\n")
    with pytest.raises(AuditFileError, match="a lens result has no field 'recoverd'; did you mean 'recovered'"):
        load_audit_file(path, {"more_a_than_b"})


def test_its_tags_travel_with_its_record_and_decide_the_verdict_and_the_figure():
    """No registry entry is needed: the record carries the result class's tags from when it was made."""
    check = LensResult(check="lens", subject="m", site="layer:1", n=4, concept="c", recovered=0.5).to_dict()
    assert check["mechanistic"] is True and check["figure_metrics"] == ["recovered"]
    record = {"name": "lens audit", "outcome": "failed", "kind": "assertion", "checks": [check]}
    assert verdict_for("m", [record]).verdict == "cheated"
    assert figure_for(check).startswith("data:image/png;base64,")
    untagged = {**record, "checks": [{**check, "mechanistic": False}]}
    assert verdict_for("m", [untagged]).verdict == "inconclusive"


def test_a_report_without_tags_is_read_with_the_tags_its_checks_had_then():
    assert not is_mechanistic({"check": "lens"}) and figure_metrics({"check": "lens"}) == ()
    assert not is_mechanistic({"check": "expect_invariant"}) and is_mechanistic({"check": "patch"})


def test_the_table_for_untagged_reports_agrees_with_the_checks_it_names():
    for name, (mechanistic, figures) in BEFORE_TAGS.items():
        result = registry.CHECKS[name].result
        assert (result.mechanistic, tuple(result.figure_metrics)) == (mechanistic, tuple(figures)), name


def test_every_registered_check_has_a_tagged_result_and_an_argument_schema():
    for name, entry in registry.CHECKS.items():
        assert issubclass(entry.result, CheckResult), name
        assert entry.takes in ("concept", "generated"), name
        assert entry.arguments["type"] == "object" and entry.arguments["additionalProperties"] is False, name
        assert set(entry.result.figure_metrics) <= {f.name for f in dataclasses.fields(entry.result)}, name


def test_each_checks_metrics_are_its_results_float_fields():
    """The table names what `expect:` may hold without importing the checks (so validate needs no torch);
    this keeps it equal to the result types."""
    import dataclasses

    from auditlens.checks import DASSweep, ProbeSweep
    from auditlens.registry import CHECKS, SWEEPS

    def floats(result_type):
        return tuple(f.name for f in dataclasses.fields(result_type) if f.type in ("float", float))

    for name, entry in CHECKS.items():
        assert entry.metrics == floats(entry.result), name
        assert entry.function.__name__ == name
    assert floats(ProbeSweep) == SWEEPS["probe"] and floats(DASSweep) == SWEEPS["das"]


def test_validating_files_loads_no_model_library(tmp_path):
    """Issue 26: `auditlens validate` took 14 s on a loaded machine, importing torch to read YAML."""
    import subprocess
    import sys
    from pathlib import Path

    probes = Path(__file__).parent.parent / "probes"
    code = ("import sys\nfrom auditlens.cli import main\n"
            f"status = main(['validate', {str(Path(__file__).parent.parent / 'audits')!r}, {str(probes)!r}, "
            f"'--probes', {str(probes)!r}])\n"
            "heavy = sorted(m for m in ('torch', 'transformers', 'scipy', 'sklearn', 'hypothesis') if m in sys.modules)\n"
            "print('STATUS', status, 'HEAVY', heavy)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "STATUS 0 HEAVY []" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
