import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no network here: never wait on the hub

import pytest

from auditlens import load_subject, session_cache

from tiny_models import ARCHS, build, ragged_token_lists  # noqa: F401


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
