"""What a repair is asked (RepairOptions): each option checked once, when the options are made, with an error
that names the option, what was given and what is valid."""

from pathlib import Path

import pytest

from auditlens.errors import AuditlensError
from auditlens.repair import RepairOptions
from auditlens.repair.options import DEFAULT_MAX_LOSS

PROBES = Path(__file__).resolve().parent.parent / "probes"


def test_paths_given_as_text_become_paths_and_the_defaults_are_the_commands(tmp_path):
    options = RepairOptions(model="fixture:count-cheated", out=str(tmp_path / "cured"), probes=str(PROBES))
    assert (options.out, options.probes) == (tmp_path / "cured", PROBES)
    assert (options.clean, options.max_loss, options.reference, options.seed) == (None, DEFAULT_MAX_LOSS, None, 0)


@pytest.mark.parametrize("given, message", [
    ({"model": ""}, r"^--model names the model the report audited .*; got ''$"),
    ({"max_loss": -0.1}, r"^--max-loss is a share of clean accuracy from 0 to 1 \(0.01 is one point\); got -0.1$"),
    ({"max_loss": 1.0}, r"^--max-loss is a share of clean accuracy from 0 to 1 .*; got 1.0$"),
    ({"max_loss": "0.01"}, r"^--max-loss is a share .*; got '0.01'$"),
    ({"probes": "no/such/dir"}, r"^--probes no/such/dir: no such directory \(the concept files the audits name\)$"),
    ({"clean": ""}, r"^--clean names a labelled concept of the task .*; got ''$"),
    ({"reference": "no/such/file.txt"}, r"^--reference no/such/file.txt: no such file; give a text file"),
    ({"seed": 1.5}, r"^--seed is a whole number .*; got 1.5$"),
    ({"seed": True}, r"^--seed is a whole number .*; got True$"),
])
def test_a_bad_option_is_an_error_naming_it_and_what_is_valid(tmp_path, given, message):
    asked = {"model": "fixture:count-cheated", "out": tmp_path / "cured", "probes": PROBES, **given}
    with pytest.raises(AuditlensError, match=message):
        RepairOptions(**asked)


def test_an_out_directory_that_exists_is_refused(tmp_path):
    # repair never writes over a model
    with pytest.raises(AuditlensError, match=r"^--out .*: it exists; give a new directory"):
        RepairOptions(model="fixture:count-cheated", out=tmp_path, probes=PROBES)


def test_the_options_are_frozen(tmp_path):
    options = RepairOptions(model="fixture:count-cheated", out=tmp_path / "cured", probes=PROBES)
    with pytest.raises(AttributeError):
        options.max_loss = 0.5
