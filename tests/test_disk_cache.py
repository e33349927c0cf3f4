"""The on-disk activation cache: a second session costs no forward pass; a corrupted entry is caught."""

import pytest
import torch

from auditlens import ActivationCache, capture, load_subject
from tiny_models import build, ragged_token_lists


def fresh_session(directory):
    """A new process's view: an empty memory cache over the same directory, a freshly loaded model."""
    return ActivationCache(directory=str(directory)), load_subject(build("gpt2"))


def test_a_second_session_reads_the_disk_instead_of_running(tmp_path):
    cache, subject = fresh_session(tmp_path)
    inputs = subject.encode(ragged_token_lists())
    first = capture(subject, inputs, ["layer:0", "layer:2"], cache=cache)
    cache, subject = fresh_session(tmp_path)
    second = capture(subject, inputs, ["layer:0", "layer:2"], cache=cache)
    assert subject.forward_passes == 0
    torch.testing.assert_close(first["layer:2"], second["layer:2"], rtol=0, atol=0)


def test_entry_paths_are_hashes_inside_the_directory(tmp_path):
    cache, subject = fresh_session(tmp_path)
    capture(subject, subject.encode(ragged_token_lists()), "layer:1", cache=cache)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and all(p.resolve().is_relative_to(tmp_path.resolve()) for p in files)
    assert all(len(p.stem) == 40 and p.suffix == ".safetensors" for p in files)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_corrupted_entry_is_detected_deleted_and_recomputed(tmp_path, damage):
    cache, subject = fresh_session(tmp_path)
    inputs = subject.encode(ragged_token_lists())
    clean = capture(subject, inputs, "layer:1", cache=cache)
    (entry,) = [p for p in tmp_path.rglob("*.safetensors")]
    data = bytearray(entry.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[-5] ^= 0xFF  # a bit flip inside the tensor bytes: only the checksum can see it
    entry.write_bytes(bytes(data))
    cache, subject = fresh_session(tmp_path)
    with pytest.warns(UserWarning, match="is corrupted .* deleted and recomputed"):
        again = capture(subject, inputs, "layer:1", cache=cache)
    assert subject.forward_passes == 1 and cache.disk.corrupted == 1
    torch.testing.assert_close(again, clean, rtol=0, atol=0)


def test_entries_read_from_disk_respect_the_memory_budget(tmp_path):
    cache, subject = fresh_session(tmp_path)
    inputs = subject.encode(ragged_token_lists())
    for site in ("layer:0", "layer:1", "layer:2"):
        capture(subject, inputs, site, cache=cache)
    one_entry = 10 * 32 * 4
    budgeted = ActivationCache(max_bytes=2 * one_entry, directory=str(tmp_path))
    for site in ("layer:0", "layer:1", "layer:2"):
        capture(subject, inputs, site, cache=budgeted)
    assert len(budgeted) == 2 and budgeted.nbytes <= 2 * one_entry


def test_a_full_disk_is_a_warning_and_the_run_goes_on(tmp_path, monkeypatch):
    import auditlens.storage.disk as disk

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    cache, subject = fresh_session(tmp_path / "cache")
    monkeypatch.setattr(disk, "save_file", no_space)
    with pytest.warns(UserWarning, match="could not write the cache entry .*No space left on device"):
        value = capture(subject, subject.encode([[3, 4, 5]]), "layer:0", cache=cache)
    assert value.shape == (1, 32) and cache.disk.failed_writes >= 1


def _rewrite(entry, tensor, metadata):
    from safetensors.torch import save_file

    save_file({"value": tensor.contiguous()}, str(entry), metadata=metadata)


def _entry(path):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return handle.get_tensor("value"), handle.metadata()


@pytest.mark.parametrize("forgery", ["other values, checksum recomputed", "another entry's bytes, key relabelled",
                                     "written under another cache key"])
def test_a_forged_entry_is_refused_and_recomputed(tmp_path, monkeypatch, forgery):
    """Whoever can write a shared cache must not be able to choose what an audit reads from it."""
    import hashlib

    from auditlens.storage.disk import DiskCache

    cache, subject = fresh_session(tmp_path)
    inputs = subject.encode(ragged_token_lists())
    clean = capture(subject, inputs, ["layer:0", "layer:1"], cache=cache)
    entries = sorted(tmp_path.rglob("*.safetensors"))
    target, other = entries[0], entries[1]
    tensor, metadata = _entry(target)
    if forgery == "other values, checksum recomputed":
        forged = torch.zeros_like(tensor)
        digest = hashlib.sha256(forged.view(torch.uint8).numpy().tobytes()).hexdigest()
        _rewrite(target, forged, {**metadata, "sha256": digest})
    elif forgery == "another entry's bytes, key relabelled":
        other_tensor, other_metadata = _entry(other)
        _rewrite(target, other_tensor, {**other_metadata, "key": metadata["key"]})
    else:
        rogue = DiskCache(tmp_path, secret=b"somebody else's secret key")
        key = eval(metadata["key"], {"torch": torch})  # noqa: S307 (our own repr of a tuple of plain values)
        rogue.put(key, torch.zeros_like(tensor))
    cache, subject = fresh_session(tmp_path)
    with pytest.warns(UserWarning, match="fails authentication"):
        again = capture(subject, inputs, ["layer:0", "layer:1"], cache=cache)
    assert cache.disk.corrupted == 1 and subject.forward_passes == 1
    for site in ("layer:0", "layer:1"):
        torch.testing.assert_close(again[site], clean[site], rtol=0, atol=0)


def test_the_cache_key_lives_outside_the_cache(tmp_path, monkeypatch):
    from auditlens import CaptureError
    from auditlens.storage.cache_key import KEY_VARIABLE, cache_secret, key_file

    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    secret = cache_secret(tmp_path / "cache")
    assert key_file().is_file() and oct(key_file().stat().st_mode & 0o777) == "0o600"
    assert cache_secret(tmp_path / "cache") == secret  # made once, then read
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cache" / "inside"))
    with pytest.raises(CaptureError, match="lies inside the cache directory"):
        cache_secret(tmp_path / "cache")
    monkeypatch.setenv(KEY_VARIABLE, "short")
    with pytest.raises(CaptureError, match="at least 16 characters"):
        cache_secret(tmp_path / "cache")
    monkeypatch.setenv(KEY_VARIABLE, "a shared CI secret of some length")
    assert cache_secret(tmp_path / "cache") == b"a shared CI secret of some length"
