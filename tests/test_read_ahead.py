"""Read-ahead: a pass keeps what later checks on the same inputs will ask for, within a budget."""

import pytest
import torch

from auditlens import ActivationCache, CaptureError, capture, load_subject, run
from auditlens.accounting import lower_bound, need_id
from auditlens.readout import ClassifierLogits, LastTokenLogits, NextTokenLogits, readout_for


def _default_readout(subject):
    return readout_for(subject, candidates=[1, 2, 3]) if subject.kind == "causal-lm" else ClassifierLogits()


def test_other_sites_positions_and_the_readout_cost_no_second_pass(tiny, ragged):
    cache = ActivationCache()
    capture(tiny, ragged, "layer:1", position="last", cache=cache)
    passes = tiny.forward_passes
    later = run(tiny, ragged, sites=["embed", "layer:0", "attn:1", "mlp:2"], position="mean",
                readout=_default_readout(tiny), cache=cache)
    assert tiny.forward_passes == passes
    # and what was read ahead equals what a pass of its own gives
    fresh = run(tiny, ragged, sites=["embed", "layer:0", "attn:1", "mlp:2"], position="mean",
                readout=_default_readout(tiny), cache=None)
    for name, value in fresh.activations.items():
        torch.testing.assert_close(later.activations[name], value, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(later.scores, fresh.scores, rtol=1e-5, atol=1e-5)


def test_a_module_read_once_is_read_ahead_on_new_inputs(tiny, ragged):
    cache = ActivationCache()
    inner = next(name for name, module in tiny.model.named_modules() if isinstance(module, torch.nn.Linear))
    capture(tiny, ragged.select(range(5)), inner, position="first", cache=cache)  # now in the working set
    capture(tiny, ragged, "layer:0", cache=cache)
    passes = tiny.forward_passes
    capture(tiny, ragged, inner, position="first", cache=cache)
    assert tiny.forward_passes == passes


def test_no_budget_no_read_ahead(tiny, ragged):
    cache = ActivationCache(read_ahead_bytes=0)
    capture(tiny, ragged, "layer:1", cache=cache)
    assert len(cache) == 1
    capture(tiny, ragged, "layer:0", cache=cache)
    assert tiny.forward_passes == 2


def test_read_ahead_stays_within_its_budget(tiny, ragged):
    one_read = len(ragged) * 32 * 4  # the tiny models are d=32
    cache = ActivationCache(read_ahead_bytes=3 * one_read)
    capture(tiny, ragged, "layer:1", cache=cache)
    asked = one_read
    assert asked < cache.nbytes <= asked + 3 * one_read


def test_a_failing_extra_never_fails_what_was_asked(tiny):
    cache = ActivationCache()
    long = tiny.encode([[3, 4, 5, 6, 7], [4, 5, 6, 7, 8]])
    capture(tiny, long, "layer:0", position=3, cache=cache)  # index 3 joins the working set
    short = tiny.encode([[3, 4, 5, 6, 7], [3, 4]])
    assert capture(tiny, short, "layer:1", cache=cache).shape[0] == 2  # reading index 3 ahead fails quietly
    with pytest.raises(CaptureError, match=r"position 3 is outside examples \[1\]"):
        capture(tiny, short, "layer:0", position=3, cache=cache)  # asked for, it fails with the reason


def test_candidate_logits_come_from_the_vocabulary_logits_read_ahead():
    from auditlens import load_subject
    from tiny_models import build

    subject = load_subject(build("llama"), id="tiny-llama")
    inputs = subject.encode([[3, 4, 5], [6, 7, 8, 9]])
    cache = ActivationCache()
    capture(subject, inputs, "layer:0", cache=cache)
    assert (subject.fingerprint, inputs.digest, (), "readout", LastTokenLogits().key) in cache
    passes = subject.forward_passes
    scores = run(subject, inputs, readout=NextTokenLogits((5, 9)), cache=cache).scores
    assert subject.forward_passes == passes
    direct = run(subject, inputs, readout=NextTokenLogits((5, 9)), cache=None).scores
    torch.testing.assert_close(scores, direct)


def test_extras_go_to_disk_only_once_asked_for(tiny, ragged, tmp_path):
    def on_disk():
        return len([p for p in tmp_path.rglob("*") if p.is_file()])

    cache = ActivationCache(directory=str(tmp_path))
    capture(tiny, ragged, "layer:1", cache=cache)
    assert len(cache) > 1 and on_disk() == 1
    capture(tiny, ragged, "layer:0", cache=cache)  # read ahead, now needed: a later session will need it too
    assert tiny.forward_passes == 1 and on_disk() == 2
    fresh = ActivationCache(directory=str(tmp_path))  # the next session
    capture(tiny, ragged, "layer:0", cache=fresh)
    assert tiny.forward_passes == 1


def test_lower_bound_counts_each_inputs_and_interventions_once():
    a = need_id("digest-a", (), 100, 64)
    b = need_id("digest-a", ("zero(...)",), 100, 64)
    assert lower_bound([a, a, b]) == 4  # two combinations, two batches each
    assert lower_bound([need_id("digest-a", (), 100, 32), a]) == 2  # the largest batch size used counts
    assert lower_bound([]) == 0


def test_every_run_call_logs_its_need_hit_or_miss(tiny, ragged):
    capture(tiny, ragged, "layer:1", batch_size=4)
    capture(tiny, ragged, "layer:1", batch_size=4)
    assert len(tiny.needs) == 2 and lower_bound(tiny.needs) == 3 == tiny.forward_passes


@pytest.mark.parametrize("variable, value, message", [
    ("AUDITLENS_READ_AHEAD_MB", "-1", "AUDITLENS_READ_AHEAD_MB must be 0 or more megabytes; got -1"),
    ("AUDITLENS_CACHE_MB", "2GB", "AUDITLENS_CACHE_MB must be a whole number of megabytes; got '2GB'"),
])
def test_a_bad_cache_budget_names_its_variable(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(CaptureError, match=message):
        ActivationCache()


def test_the_budgets_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("AUDITLENS_CACHE_MB", "64")
    monkeypatch.setenv("AUDITLENS_READ_AHEAD_MB", "0")
    cache = ActivationCache()
    assert cache.max_bytes == 64 * 2**20 and cache.read_ahead_bytes == 0
    monkeypatch.delenv("AUDITLENS_READ_AHEAD_MB")
    assert ActivationCache().read_ahead_bytes == 8 * 2**20  # an eighth of the cache


def test_an_unreadable_site_is_named_and_never_poisons_later_captures():
    from tiny_models import build

    subject = load_subject(build("gpt2"))
    cache = ActivationCache()
    inputs = subject.encode([[3, 4, 5], [6, 7]])
    with pytest.raises(CaptureError, match=r"site 'transformer' \(transformer\): module output of type "
                                           r"\w+ holds no activation tensor; choose a module"):
        capture(subject, inputs, "transformer", cache=cache)
    assert capture(subject, inputs, "layer:0", cache=cache).shape == (2, 32)
    fresh = load_subject(build("gpt2"))  # same weights, same fingerprint, same working set
    assert capture(fresh, fresh.encode([[8, 9]]), "layer:1", cache=cache).shape == (1, 32)


def test_a_pass_above_the_lower_bound_says_why(tiny, ragged):
    """Issue 26: the report showed more passes than the bound with no reason. A second pass on the same
    inputs is logged with the reads no earlier pass kept; the report lists them beside the figure."""
    from auditlens.report import build_report

    cache = ActivationCache()
    capture(tiny, ragged, "layer:1", position="last", cache=cache)
    capture(tiny, ragged, "layer:0", position="mean", cache=cache)  # read ahead: no pass, nothing to say
    assert tiny.repeats == []
    capture(tiny, ragged, "head:0.1", position="last", cache=cache)  # heads are not read ahead
    (repeat,) = tiny.repeats
    assert repeat["why"].startswith("head:0.1 (last) on ") and repeat["why"].endswith("not kept by the earlier pass")
    assert repeat["passes"] == 1
    record = {"nodeid": "t.py::a[m]", "name": "a", "file": None, "line": None, "model": "m", "fingerprint": None,
              "truth": None, "outcome": "passed", "kind": None, "duration": 0.0, "forward_passes": tiny.forward_passes,
              "needs": list(tiny.needs), "repeats": list(tiny.repeats), "results": [], "message": None}
    model = build_report([record], {"seed": 0})["models"][0]
    assert model["forward_passes"] - model["forward_passes_lower_bound"] == 1
    assert model["passes_above_bound"] == [f"{repeat['why']} (1 passes)"]


FEATURE_AUDITS = """\
dictionaries:
  layer:0: {train: {data: [superposition_corpus], width: 64, k: 4, position: last}}
audits:
  - name: the intended feature decides
    ablate_tied: {concept: superposition_in_distribution, at: "features:layer:0", tied_to: alpha_feature, n: 1}
    expect: {accuracy_drop: ">= 0.25"}
  - name: the spurious feature does not
    ablate_tied: {concept: superposition_in_distribution, at: "features:layer:0", tied_to: beta_feature, n: 1}
    expect: {accuracy_drop: "<= 0.1"}
"""


def test_audits_of_a_dictionarys_latents_run_their_lower_bound(tmp_path, monkeypatch):
    """Issue 37: the superposition audits ran 77 passes against a bound of 42. The examples shown for a tied
    latent were read at every token (never read ahead), once per latent and concept, each a pass of its own;
    they are now the latents' peak over tokens, read ahead with the pass that ranked them."""
    from pathlib import Path

    from auditlens import load_concept
    from auditlens.declarative import load_audit_file

    probes = Path(__file__).parent.parent / "probes"
    monkeypatch.setenv("AUDITLENS_DICTIONARY_CACHE", str(tmp_path / "dictionaries"))
    (tmp_path / "features.audit.yaml").write_text(FEATURE_AUDITS)
    entries = load_audit_file(tmp_path / "features.audit.yaml", {p.stem for p in probes.glob("*.yaml")})
    subject = load_subject("fixture:superposition-learned")
    for entry in entries:
        result, missed = entry.run(subject, lambda name: load_concept(probes / f"{name}.yaml"))
        assert missed == [] and result.feature_examples  # the tied latent's top examples were read
    assert subject.repeats == []
    assert subject.forward_passes == lower_bound(subject.needs)


def test_a_latents_peak_is_its_maximum_over_the_real_tokens(tiny, ragged):
    every = capture(tiny, ragged, "layer:1", position="all")
    peak = capture(tiny, ragged, "layer:1", position="max")
    real = ragged.attention_mask.bool()[..., None]
    torch.testing.assert_close(peak, every.masked_fill(~real, float("-inf")).amax(dim=1))
