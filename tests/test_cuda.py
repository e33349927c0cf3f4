"""What must hold on a CUDA GPU (issue 17): these run wherever CUDA is present and are skipped elsewhere.
The capture and big-model CUDA tests live beside their CPU twins (test_capture.py, test_big_models.py)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from auditlens import LinearEraser, capture, load_subject

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
ROOT = Path(__file__).parent.parent


def test_leace_is_fitted_on_the_device_and_erases_as_on_the_cpu(concepts):
    cpu, gpu = load_subject("fixture:count-learned"), load_subject("fixture:count-learned", device="cuda")
    concept = concepts["more_a_than_b"]
    on_host = capture(cpu, concept.inputs(cpu), "layer:1")
    on_device = capture(gpu, concept.inputs(gpu), "layer:1", keep_on_device=True)
    host_eraser = LinearEraser.fit(on_host, concept.label_tensor(), 2)
    device_eraser = LinearEraser.fit(on_device, concept.label_tensor(), 2)
    assert device_eraser.eraser_.proj_left.device.type == "cuda"
    torch.testing.assert_close(device_eraser(on_device).cpu(), host_eraser(on_host), rtol=1e-4, atol=1e-4)


def _verdicts(tmp_path: Path, *device: str) -> dict:
    subprocess.run([sys.executable, "-m", "pytest", "audits", "-q", "-p", "no:cacheprovider", "--audit-report",
                    str(tmp_path), *device], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    report = json.loads((tmp_path / "report.json").read_text())
    return {m["id"]: (m["verdict"], sorted((a["nodeid"], a["outcome"]) for a in m["audits"])) for m in report["models"]}


@pytest.mark.slow
def test_the_repo_suite_gives_the_same_verdicts_and_outcomes_on_cuda(tmp_path):
    on_cpu = _verdicts(tmp_path / "cpu")
    on_cuda = _verdicts(tmp_path / "cuda", "--audit-device", "cuda")
    assert on_cuda == on_cpu
