"""Root conftest: keep the whole repository offline, and share one zoo cache with sub-processes."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no model hub on this machine or in CI

from auditlens.zoo import cache_root  # noqa: E402

# pytester and subprocess tests change HOME; pin the zoo cache so they reuse the built organisms.
os.environ.setdefault("AUDITLENS_ZOO_CACHE", str(cache_root()))
