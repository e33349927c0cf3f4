
import pytest

from auditlens import load_subject, session_cache
from tiny_models import ARCHS, build, ragged_token_lists  # noqa: F401


def pytest_sessionstart(session):
    """The tests load the organisms shipped in fixtures/ and train none. Where one is not shipped or
    ignored ($AUDITLENS_ZOO_SOURCE=rebuild: the suite run on rebuilt organisms), build every one the
    tests load (seed 0) before the first test, in parallel processes (one per core), rather than one
    after another on first use. Once per run (not per xdist worker)."""
    if hasattr(session.config, "workerinput"):
        return
    from auditlens.zoo.registry import list_organisms, needs_training
    from auditlens.zoo_tools.build_pool import build_many

    missing = [o.name for o in list_organisms() if needs_training(o)]  # none where fixtures/ ships them
    if missing:
        print(f"\nauditlens tests: training {len(missing)} zoo organisms first, in parallel (cached after) ...",
              flush=True)
        build_many(missing)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty session cache, so forward-pass counts are its own."""
    session_cache.clear()
    yield
    session_cache.clear()


@pytest.fixture(params=ARCHS)
def arch(request):
    return request.param


@pytest.fixture
def tiny(arch):
    return load_subject(build(arch), id=f"tiny-{arch}")


@pytest.fixture
def ragged(tiny):
    return tiny.encode(ragged_token_lists())


@pytest.fixture(scope="session")
def learned():
    """The count twin that learned the rule (built once per machine into the zoo cache)."""
    return load_subject("fixture:count-learned")


@pytest.fixture(scope="session")
def cheated():
    """The count twin that reads the marker token instead of counting."""
    return load_subject("fixture:count-cheated")


@pytest.fixture(scope="session")
def concepts():
    from pathlib import Path

    from auditlens import load_concept

    probes = Path(__file__).parent.parent / "probes"
    return {p.stem: load_concept(p) for p in probes.glob("*.yaml")}


@pytest.fixture
def audit_repo(pytester):
    """A user's repository for pytester runs: probes/ holding two of the count concepts."""
    import shutil
    from pathlib import Path

    source, probes = Path(__file__).parent.parent / "probes", pytester.path / "probes"
    probes.mkdir()
    for name in ("marker_swapped", "more_a_than_b"):
        for suffix in (".yaml", ".jsonl"):
            shutil.copy(source / f"{name}{suffix}", probes / f"{name}{suffix}")
    return pytester


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module of small tensor work (training, many tiny operations): a second thread
    only adds contention, 10-50x slower on a busy 2-core machine; the previous count is restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
