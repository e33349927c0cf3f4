"""A real browser opens the generated report.html: it renders without console errors, and the verdicts
and figures are in the page. The screenshot is kept as an artifact in reports/screenshots/."""

import shutil
import subprocess
from pathlib import Path

import pytest

from auditlens import erase, load_concept, load_subject, probe
from auditlens.report import build_report, write_report
from auditlens.results import recording

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).parent.parent / "reports" / "screenshots"
PROBES = Path(__file__).parent.parent / "probes"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def report_html(tmp_path_factory):
    concept, data = load_concept(PROBES / "more_a_than_b.yaml"), load_concept(PROBES / "count_in_distribution.yaml")
    records = []
    for name in ("count-learned", "count-cheated"):
        subject = load_subject(f"fixture:{name}")
        for test, check in (("test_sweep", lambda: probe(subject, concept, at="layer:*")),
                            ("test_erase", lambda: erase(subject, concept, at="layer:1", data=data))):
            with recording() as results:
                result = check()
                passed = (result.best_accuracy >= 0.9) if test == "test_sweep" else (result.accuracy_drop >= 0.3)
            records.append({"nodeid": f"audits/t.py::{test}[{subject.id}]", "name": test, "file": "audits/t.py",
                            "line": 1, "model": subject.id, "fingerprint": subject.fingerprint,
                            "truth": subject.metadata["truth"], "outcome": "passed" if passed else "failed",
                            "kind": None if passed else "assertion", "duration": 0.0, "forward_passes": 0,
                            "results": [r.to_dict() for r in results], "message": None})
    report = build_report(records, {"auditlens": "test", "seed": 0})
    return write_report(report, tmp_path_factory.mktemp("report"))["html"]


def chromium(*arguments, timeout=120):
    return subprocess.run([CHROMIUM, *FLAGS, "--enable-logging=stderr", "--v=0", *arguments],
                          capture_output=True, text=True, timeout=timeout)


def test_report_renders_without_console_errors_and_shows_verdicts_and_figures(report_html):
    dom = chromium("--dump-dom", report_html.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console
    page = dom.stdout
    assert '<span class="verdict learned">learned</span>' in page
    assert '<span class="verdict cheated">cheated</span>' in page
    assert page.count('class="figure"') == 4  # two sweeps (curves) and two erase bar charts
    assert "fixture:count-cheated" in page


def test_screenshot_is_saved_as_an_artifact(report_html):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / "report.png"
    shot = chromium("--window-size=1200,1800", f"--screenshot={target}", report_html.as_uri())
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert target.stat().st_size > 20_000  # a rendered page, not a blank one


@pytest.mark.parametrize("size", ["1366,768", "1920,1080"], ids=["laptop", "wide"])
def test_the_report_fits_a_laptop_and_a_wide_screen(report_html, size):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"report-{size.replace(',', 'x')}.png"
    shot = chromium(f"--window-size={size}", f"--screenshot={target}", report_html.as_uri())
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert target.stat().st_size > 20_000


def test_the_report_prints_with_every_audit_open(report_html):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / "report.pdf"
    printed = chromium("--no-pdf-header-footer", f"--print-to-pdf={target}", report_html.as_uri())
    assert printed.returncode == 0, printed.stderr[-2000:]
    pdf = target.read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages") >= 2
