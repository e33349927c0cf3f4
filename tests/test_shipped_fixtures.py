"""The organisms ship in fixtures/: every test, audit and bench loads the same weights on any machine,
each shipped build matches its recipe and its recorded hashes, and a rebuild is judged by behaviour."""

import json
import shutil
from pathlib import Path

import pytest

from auditlens import ModelLoadError, load_subject
from auditlens.cli import main
from auditlens.zoo import registry
from auditlens.zoo.organism import Organism, canonical_name
from auditlens.zoo.registry import get, list_organisms, needs_training, resolve_fixture
from auditlens.zoo.shipped import (
    CONCEPTS_DIR,
    FIXTURES_VARIABLE,
    SHIPPED_SEEDS,
    SOURCE_VARIABLE,
    check_weights,
    fixtures_root,
    read_metadata,
    ship,
)
from auditlens.zoo_tools.verify import Verification

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = [f"{o.name}@{seed}" for o in list_organisms() if o.build is not None for seed in range(SHIPPED_SEEDS)]


@pytest.fixture
def shipped_only(monkeypatch):
    """Load what fixtures/ ships, whatever the run's $AUDITLENS_ZOO_SOURCE; and fail where anything trains."""
    monkeypatch.setenv(SOURCE_VARIABLE, "shipped")

    def no_training(organism, force=False):
        raise AssertionError(f"fixture:{organism.name} was trained; it should have been loaded from fixtures/")

    monkeypatch.setattr(registry, "build", no_training)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_organism_is_shipped_from_its_current_recipe(name):
    organism = get(name)
    directory = fixtures_root() / canonical_name(organism)
    assert (directory / "organism.json").is_file(), (
        f"fixture:{organism.name} is not shipped in {directory}: run `auditlens zoo ship {organism.name}`")
    metadata = read_metadata(directory)
    assert metadata["recipe"] == organism.recipe_hash, (
        f"fixture:{organism.name}: the recipe changed since it was shipped ({metadata['recipe']} -> "
        f"{organism.recipe_hash}); re-ship it with `auditlens zoo ship {organism.name}` and commit fixtures/")
    assert metadata["truth"] == organism.truth and metadata["seed"] == organism.seed
    check_weights(directory, metadata)  # the bytes are the ones shipped (not an LFS pointer, not edited)
    for concept in metadata["concept_files"]:
        assert (directory / concept).read_bytes() == (ROOT / "probes" / Path(concept).name).read_bytes(), (
            f"{directory / concept} differs from probes/: re-ship fixture:{organism.name}")


def test_nothing_is_shipped_that_no_recipe_makes():
    stray = []
    for directory in sorted(p for p in fixtures_root().iterdir() if p.is_dir()):
        try:
            organism = get(directory.name)
        except ModelLoadError:
            stray.append(directory.name)
            continue
        if organism.build is None or canonical_name(organism) != directory.name:
            stray.append(directory.name)
    assert not stray, f"fixtures/ holds builds no recipe makes: {stray}"


def test_loading_a_shipped_organism_trains_nothing(shipped_only):
    subject = load_subject("fixture:count-learned")
    assert subject.metadata["origin"] == "shipped" and subject.metadata["truth"] == "learned"
    assert not needs_training(get("phrase-clf-cheated@2"))
    directory, metadata = resolve_fixture("count-learned@0")  # seed 0 is the plain name
    assert directory == (fixtures_root() / "count-learned").resolve() and metadata["seed"] == 0


def _copy_of(name: str, into: Path) -> Path:
    copy = into / name
    shutil.copytree(fixtures_root() / name, copy)
    return copy


def test_a_stale_shipped_build_names_the_organism_and_the_command(tmp_path, monkeypatch, shipped_only):
    copy = _copy_of("count-learned", tmp_path)
    metadata = json.loads((copy / "organism.json").read_text())
    (copy / "organism.json").write_text(json.dumps({**metadata, "recipe": "000000000000"}))
    monkeypatch.setenv(FIXTURES_VARIABLE, str(tmp_path))
    with pytest.raises(ModelLoadError, match=r"fixture:count-learned: the build shipped in .* recipe '000000000000'"
                       r".*`auditlens zoo ship count-learned`.*AUDITLENS_ZOO_SOURCE=rebuild"):
        load_subject("fixture:count-learned")


def test_an_altered_weights_file_is_refused(tmp_path, monkeypatch, shipped_only):
    copy = _copy_of("count-cheated", tmp_path)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one weight
    weights.write_bytes(bytes(data))
    monkeypatch.setenv(FIXTURES_VARIABLE, str(tmp_path))
    with pytest.raises(ModelLoadError, match=r"model.safetensors has sha256 .* as organism.json records"):
        load_subject("fixture:count-cheated")


def test_a_bad_zoo_source_is_named(monkeypatch):
    monkeypatch.setenv(SOURCE_VARIABLE, "rebuilt")
    with pytest.raises(ModelLoadError, match="AUDITLENS_ZOO_SOURCE must be one of shipped, rebuild; got 'rebuilt'"):
        resolve_fixture("count-learned")


def test_ship_copies_the_build_its_concepts_and_hashes_and_rebuild_ignores_it(tmp_path, monkeypatch):
    """A toy organism: shipped into a fixtures directory of its own, loaded from there; with
    AUDITLENS_ZOO_SOURCE=rebuild its recipe runs instead, and the origin says so."""
    monkeypatch.setenv(SOURCE_VARIABLE, "shipped")
    monkeypatch.setenv("AUDITLENS_ZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(FIXTURES_VARIABLE, str(tmp_path / "fixtures"))
    calls = []

    def recipe(directory, seed):
        calls.append(seed)
        (directory / "model.safetensors").write_bytes(b"weights")
        return {"in_distribution_accuracy": 1.0}

    toy = registry.register(Organism(name="toy-shipped", family="toy", description="", truth="learned",
                                     build=recipe, datasets={"in_distribution": "count_in_distribution",
                                                             "concepts": [], "counterfactual": ["count_swapped"]}))
    try:
        target = ship(toy, registry.build(toy), ROOT / "probes")
        assert sorted(p.name for p in (target / CONCEPTS_DIR).iterdir()) == [
            "count_in_distribution.jsonl", "count_in_distribution.yaml", "count_swapped.jsonl", "count_swapped.yaml"]
        metadata = read_metadata(target)
        assert set(metadata["weights_sha256"]) == {"model.safetensors"} and metadata["recipe"] == toy.recipe_hash
        assert metadata["built_with"]["cpu_capability"]
        shutil.rmtree(tmp_path / "cache")
        assert resolve_fixture("toy-shipped")[1]["origin"] == "shipped" and calls == [0]
        monkeypatch.setenv(SOURCE_VARIABLE, "rebuild")
        directory, metadata = resolve_fixture("toy-shipped")
        assert metadata["origin"] == f"built on this machine ({metadata['built_with']['cpu_capability']} kernels)"
        assert calls == [0, 0]
        assert directory.is_relative_to(tmp_path / "cache")
    finally:
        registry._REGISTRY.pop("toy-shipped")


def test_a_verification_names_every_difference():
    same = Verification("count-learned", ("learned", "learned"), {"in": (1.0, 0.97)}, 0.05, ("learned", "learned"))
    assert same.ok and "same organism" in same.describe()
    differs = Verification("count-learned", ("learned", "learned"), {"in": (1.0, 0.90)}, 0.05,
                           ("learned", "cheated"), ["audits/x.py::t: passed shipped, failed rebuilt"])
    assert differs.problems == ["accuracy on in 1.000 shipped, 0.900 rebuilt (tolerance 0.05)",
                                "verdict learned shipped, cheated rebuilt",
                                "outcome audits/x.py::t: passed shipped, failed rebuilt"]


@pytest.mark.slow
def test_zoo_verify_rebuilds_and_compares_by_behaviour(tmp_path, capsys, monkeypatch):
    """count-cheated rebuilt on this machine's kernels: the same organism by its accuracies and by the
    verdict and outcomes of the count audits (a copy of audits/count.audit.yaml with its probes)."""
    monkeypatch.setenv(SOURCE_VARIABLE, "shipped")
    audits = tmp_path / "audits"
    audits.mkdir()
    shutil.copy(ROOT / "audits" / "count.audit.yaml", audits)
    shutil.copytree(ROOT / "probes", tmp_path / "probes")
    (tmp_path / "pytest.ini").write_text("[pytest]\naudit_probes = probes\n")
    assert main(["zoo", "verify", "count-cheated", "--audits", str(audits)]) == 0
    out = capsys.readouterr().out
    assert "count-cheated: same organism (accuracy shipped/rebuilt: count_in_distribution " in out
    assert "verdict cheated/cheated" in out and "zoo verify: 1/1 rebuilds are the same organism" in out


def test_zoo_verify_refuses_what_it_cannot_compare(capsys, monkeypatch):
    monkeypatch.setenv(SOURCE_VARIABLE, "rebuild")
    assert main(["zoo", "verify", "count-learned"]) == 2
    assert "zoo verify compares the shipped builds with rebuilds: unset AUDITLENS_ZOO_SOURCE" in capsys.readouterr().err
    monkeypatch.setenv(SOURCE_VARIABLE, "shipped")
    assert main(["zoo", "verify", "minilm"]) == 2
    assert "come from a package, not a recipe" in capsys.readouterr().err
    assert main(["zoo", "verify", "count-learned@7"]) == 2
    assert "not shipped in fixtures/" in capsys.readouterr().err
    assert main(["zoo", "verify", "count-learned", "--audits", "no/such/dir"]) == 2
    assert "--audits no/such/dir: no such directory" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["zoo", "ship", "--seeds", "0"], "--seeds must be 1 or more; got 0"),
    (["zoo", "ship", "count-learned", "--probes", "no/such/probes"], "--probes no/such/probes: no such directory"),
    (["zoo", "verify", "count-learned", "--audits", "none", "--tolerance", "2"],
     "--tolerance is an accuracy difference from 0 to 1; got 2.0"),
])
def test_zoo_commands_name_a_bad_option(argv, message, capsys, monkeypatch):
    monkeypatch.setenv(SOURCE_VARIABLE, "shipped")
    assert main(argv) == 2
    assert message in capsys.readouterr().err
