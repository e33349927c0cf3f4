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
