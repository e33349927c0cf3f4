"""``auditlens init``: scaffold audits/, probes/ and the pytest options in a user's repository."""

from __future__ import annotations

from pathlib import Path

SAMPLE_CONCEPT = """\
# A concept: labelled examples that audits refer to by this file's name (fixture `negation`).
name: negation
description: Affirmed against negated statements about the same things.
labels: [affirmed, negated]
templates:
  - {template: "the {noun} was {adj}", label: affirmed}
  - {template: "the {noun} was not {adj}", label: negated}
  - {template: "i think the {noun} is {adj}", label: affirmed}
  - {template: "i do not think the {noun} is {adj}", label: negated}
slots:
  noun: [film, meal, hotel, book, song, game]
  adj: [good, bad, long, loud, cheap, strange]
"""

SAMPLE_PYTHON_AUDIT = '''\
"""A sample audit: where does the model represent negation? (runs once per --model)"""

from auditlens import probe


def test_negation_is_decodable_beyond_a_control_task(subject, negation):
    sweep = probe(subject, negation, at="layer:*", position="mean")
    assert sweep.best_accuracy >= 0.9
    assert sweep.best_selectivity >= 0.1
'''

SAMPLE_YAML_AUDIT = """\
# The same audit, declared. Check with: auditlens validate audits/
audits:
  - name: negation decodable beyond a control task
    probe: {concept: negation, at: "layer:*", position: mean}
    expect: {best_accuracy: ">= 0.9", best_selectivity: ">= 0.1"}
"""

INI_KEYS = {
    "audit_models": '["fixture:minilm"]  # your model: ./a/save_pretrained/directory, a hub id or fixture:NAME',
    "audit_report": '"reports"',
    "audit_seed": '"0"',
    "audit_device": '"cpu"',
    "audit_probes": '"probes"',
}


OFFLINE_NOTE = """\
models: a local directory is tried first (a path that names none is refused, with the closest one);
anything else is a hub id (write hub:ORG/NAME where a local directory has the same name), which
transformers fetches, retrying for minutes when there is no network.
Without a network (CI, air-gapped machines), export HF_HUB_OFFLINE=1: a hub id then loads from the
local cache or fails at once."""


def add_parser(commands) -> None:
    init = commands.add_parser("init", help="scaffold audits/, probes/ and the pytest options in a repository")
    init.add_argument("directory", nargs="?", default=".", help="the repository root (default: here)")
    init.set_defaults(run=lambda args: init_repository(args.directory))


def init_repository(directory: str | Path) -> int:
    root = Path(directory)
    files = {
        root / "probes" / "negation.yaml": SAMPLE_CONCEPT,
        root / "audits" / "test_negation.py": SAMPLE_PYTHON_AUDIT,
        root / "audits" / "negation.audit.yaml": SAMPLE_YAML_AUDIT,
    }
    for path, text in files.items():
        if path.exists():
            print(f"kept     {path} (exists)")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"created  {path}")
    print(_add_ini_options(root / "pyproject.toml"))
    print("next: pytest audits/ --model fixture:minilm   (or your own model)")
    print(OFFLINE_NOTE)
    return 0


def _add_ini_options(pyproject: Path) -> str:
    """Add the missing audit_* keys under [tool.pytest.ini_options], creating the table if needed."""
    text = pyproject.read_text() if pyproject.exists() else ""
    header = "[tool.pytest.ini_options]"
    missing = [key for key in INI_KEYS if f"\n{key}" not in f"\n{text}"]
    if not missing:
        return f"kept     {pyproject} (audit options present)"
    lines = "".join(f"{key} = {INI_KEYS[key]}\n" for key in missing)
    if "HF_HUB_OFFLINE" not in text:
        lines += "".join(f"# {line}\n" for line in OFFLINE_NOTE.splitlines())
    if header in text:
        text = text.replace(header + "\n", header + "\n" + lines, 1)
    else:
        text = text + ("\n" if text and not text.endswith("\n\n") else "") + header + "\n" + lines
    pyproject.write_text(text)
    return f"updated  {pyproject} ({', '.join(missing)})"
