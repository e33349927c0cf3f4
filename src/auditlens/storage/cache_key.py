"""The secret that authenticates on-disk activation cache entries.

Trust model: whoever can write the cache directory can replace an entry; a checksum alone cannot tell
(the forger recomputes it). Each entry therefore carries an HMAC-SHA256 of its key and its bytes under
a secret kept *outside* the cache directory: ``$AUDITLENS_CACHE_KEY`` (share it with the CI runners
that share a cache, as a CI secret), else a random key made once per user in
``$XDG_CONFIG_HOME/auditlens/cache.key`` (``~/.config/...``, mode 0600). An entry that fails the check
(altered, or written under another key) is never used: it is reported, deleted and recomputed.
Whoever holds the key can still forge entries: keep it as you keep the CI's other secrets.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ..errors import CaptureError

KEY_VARIABLE = "AUDITLENS_CACHE_KEY"


def key_file() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "auditlens" / "cache.key"


def cache_secret(cache_directory: Path) -> bytes:
    """The secret for a cache in ``cache_directory``: from the environment, else the user's key file
    (made on first use). A key file inside the cache directory is refused: it would protect nothing."""
    value = os.environ.get(KEY_VARIABLE, "")
    if value:
        if len(value) < 16:
            raise CaptureError(f"{KEY_VARIABLE} must be at least 16 characters (a random secret); "
                               f"got {len(value)}")
        return value.encode()
    path = key_file()
    if path.resolve().is_relative_to(Path(cache_directory).resolve()):
        raise CaptureError(f"the cache key file {path} lies inside the cache directory {cache_directory}, where "
                           f"whoever can alter entries can read it; set {KEY_VARIABLE} or XDG_CONFIG_HOME elsewhere")
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(handle, "w") as out:
                out.write(secrets.token_hex(32))
    secret = path.read_text().strip()
    if len(secret) < 16:
        raise CaptureError(f"the cache key file {path} holds no usable key (under 16 characters); delete it to "
                           "make a new one (entries written under the old key will be recomputed)")
    return secret.encode()
