"""Root conftest: keep the whole repository offline (no model hub on this machine or in CI)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
