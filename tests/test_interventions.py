import pytest
import torch

from auditlens import (
    Patch,
    ProjectOut,
    Steer,
    ZeroAblation,
    capture,
    intervene,
    live_hook_count,
    logit_margin,
    run,
)
from auditlens.checks.from_data import mean_ablation, patch_from, resample_ablation
from auditlens.readout import NextTokenLogits, readout_for

CANDIDATES = (5, 6)  # the two next tokens read from the causal LM


def scores(subject, inputs, *interventions, batch_size=64):
    readout = readout_for(subject, CANDIDATES)
    return run(subject, inputs, interventions=list(interventions), readout=readout, batch_size=batch_size,
               cache=None).scores


def hook_state(model):
    """Every hook dict of every module, as (module, kind, hook ids): hooks of anyone, not just ours."""
    kinds = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks")
    return [(name, kind, tuple(getattr(m, kind).keys())) for name, m in model.named_modules() for kind in kinds]


def direct_output(subject, inputs):
    with torch.no_grad():
        return subject.model(input_ids=inputs.input_ids, attention_mask=inputs.attention_mask).logits.clone()


def all_interventions(subject, inputs):
    other = inputs.select(list(range(1, len(inputs))) + [0])
    direction = torch.randn(32, generator=torch.Generator().manual_seed(0))
    return {
        "zero": ZeroAblation(subject.site("layer:1")),
        "mean": mean_ablation(subject, "layer:1", other),
        "resample": resample_ablation(subject, "layer:1", other, seed=0),
        "project": ProjectOut(subject.site("layer:1"), torch.randn(4, 32, generator=torch.Generator().manual_seed(1))),
        "patch": patch_from(subject, "layer:1", other),
        "steer": Steer(subject.site("layer:1"), direction, alpha=8.0),
    }


@pytest.mark.parametrize("name", ["zero", "mean", "resample", "project", "patch", "steer"])
def test_each_intervention_changes_the_output_then_leaves_the_model_as_it_was(tiny, ragged, name):
    # given a clean output, its parameters and its hooks
    before, state = direct_output(tiny, ragged), hook_state(tiny.model)
    params = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    intervention = all_interventions(tiny, ragged)[name]
    # when the intervention is active
    edited = scores(tiny, ragged, intervention)
    # then the behaviour moved, and afterwards the model is bit-identical with no hook left
    assert not torch.allclose(edited, scores(tiny, ragged), atol=1e-4)
    assert torch.equal(direct_output(tiny, ragged), before)
    assert hook_state(tiny.model) == state and live_hook_count(tiny.model) == 0
    assert all(torch.equal(params[k], v) for k, v in tiny.model.state_dict().items())


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_hooks_are_removed_when_the_block_raises(tiny, ragged, error):
    before, state = direct_output(tiny, ragged), hook_state(tiny.model)
    with pytest.raises(error):
        with intervene(tiny, ZeroAblation(tiny.site("layer:0")), Steer(tiny.site("mlp:1"), torch.ones(32))):
            assert live_hook_count(tiny.model) == 2
            raise error("inside the block")
    assert live_hook_count(tiny.model) == 0 and hook_state(tiny.model) == state
    assert torch.equal(direct_output(tiny, ragged), before)


def test_hooks_are_removed_when_the_forward_pass_raises(tiny, ragged):
    state = hook_state(tiny.model)
    bad = Steer(tiny.site("layer:0"), torch.ones(7))  # wrong width: fails inside the forward pass
    with pytest.raises(RuntimeError):
        scores(tiny, ragged, bad)
    assert hook_state(tiny.model) == state


def test_intervention_applies_to_a_forward_pass_the_user_runs(tiny, ragged):
    clean = direct_output(tiny, ragged)
    # a random direction: a constant one would be removed by the next LayerNorm
    vector = torch.randn(32, generator=torch.Generator().manual_seed(5))
    with intervene(tiny, Steer(tiny.site("layer:0"), vector, alpha=10.0)):
        edited = direct_output(tiny, ragged)
    assert not torch.allclose(edited, clean, atol=1e-4)
    assert torch.equal(direct_output(tiny, ragged), clean)


def test_zero_ablation_at_last_position_only_touches_the_last_token(tiny, ragged):
    site = tiny.site("layer:0")
    clean = capture(tiny, ragged, site, position="all", cache=None)
    edited = run(tiny, ragged, sites=[site], position="all", interventions=[ZeroAblation(site, "last")],
                 cache=None).activations["layer:0"]
    last = ragged.lengths - 1
    rows = torch.arange(len(ragged))
    assert edited[rows, last].abs().sum() == 0
    keep = ragged.attention_mask.bool().clone()
    keep[rows, last] = False
    torch.testing.assert_close(edited[keep], clean[keep])


def test_mean_ablation_writes_the_reference_token_mean(tiny, ragged):
    ablation = mean_ablation(tiny, "layer:0", ragged)
    reference = capture(tiny, ragged, "layer:0", position="all")
    token_mean = reference[ragged.attention_mask.bool()].mean(0)
    torch.testing.assert_close(ablation.mean, token_mean, rtol=1e-5, atol=1e-6)
    edited = run(tiny, ragged, sites=["layer:0"], position="mean", interventions=[ablation]).activations["layer:0"]
    torch.testing.assert_close(edited, token_mean.expand_as(edited), rtol=1e-5, atol=1e-6)


def test_resample_ablation_does_not_depend_on_batching(tiny, ragged):
    ablation = resample_ablation(tiny, "layer:1", ragged, seed=3)
    torch.testing.assert_close(scores(tiny, ragged, ablation, batch_size=3), scores(tiny, ragged, ablation),
                               rtol=1e-4, atol=1e-5)


def test_resample_seed_changes_the_donors(tiny, ragged):
    a = resample_ablation(tiny, "layer:1", ragged, seed=0)
    b = resample_ablation(tiny, "layer:1", ragged, seed=1)
    idx = torch.arange(len(ragged))
    assert not torch.equal(a.donor_index(idx), b.donor_index(idx))


def test_patching_from_the_same_inputs_changes_nothing(tiny, ragged):
    torch.testing.assert_close(scores(tiny, ragged, patch_from(tiny, "layer:1", ragged)), scores(tiny, ragged),
                               rtol=1e-5, atol=1e-5)


def test_patching_the_last_block_everywhere_gives_the_sources_output(tiny, arch):
    # same lengths, so every position of the base is patched from the source
    base = tiny.encode([[3, 4, 5, 6], [7, 8, 9, 10]])
    source = tiny.encode([[11, 12, 13, 14], [15, 16, 17, 18]])
    patched = scores(tiny, base, patch_from(tiny, f"layer:{tiny.n_layers - 1}", source))
    torch.testing.assert_close(patched, scores(tiny, source), rtol=1e-4, atol=1e-5)


def test_patch_last_position_copies_the_sources_last_token(tiny):
    base = tiny.encode([[3, 4, 5, 6, 7], [7, 8]])
    source = tiny.encode([[11, 12], [15, 16, 17, 18]])
    site = tiny.site("layer:0")
    patch = patch_from(tiny, site, source, positions="last")
    edited = run(tiny, base, sites=[site], position="last", interventions=[patch], cache=None).activations["layer:0"]
    torch.testing.assert_close(edited, capture(tiny, source, site, position="last"))


def test_project_out_removes_the_direction(tiny, ragged):
    direction = torch.randn(2, 32, generator=torch.Generator().manual_seed(2))
    projection = ProjectOut(tiny.site("layer:1"), direction)
    edited = run(tiny, ragged, sites=["layer:1"], position="all", interventions=[projection]).activations["layer:1"]
    assert (edited @ direction.T).abs().max() < 1e-4


def test_project_out_refuses_a_zero_direction(tiny):
    from auditlens import CheckError

    with pytest.raises(CheckError, match="zero or not finite"):
        ProjectOut(tiny.site("layer:1"), torch.zeros(32))


def test_steering_with_alpha_zero_is_the_identity(tiny, ragged):
    steer = Steer(tiny.site("layer:1"), torch.ones(32), alpha=0.0)
    torch.testing.assert_close(scores(tiny, ragged, steer), scores(tiny, ragged))


def test_steering_adds_alpha_times_the_vector(tiny, ragged):
    vector = torch.randn(32, generator=torch.Generator().manual_seed(4))
    clean = capture(tiny, ragged, "mlp:1", position="last")
    steered = run(tiny, ragged, sites=["mlp:1"], interventions=[Steer(tiny.site("mlp:1"), vector, 0.5)],
                  cache=None).activations["mlp:1"]
    torch.testing.assert_close(steered, clean + 0.5 * vector, rtol=1e-5, atol=1e-5)


def test_embed_site_can_be_edited(tiny, ragged):
    assert not torch.allclose(scores(tiny, ragged, ZeroAblation(tiny.site("embed"))), scores(tiny, ragged))


def test_interventions_are_cached_by_their_parameters(tiny, ragged):
    readout = readout_for(tiny, CANDIDATES)
    steer = lambda alpha: Steer(tiny.site("layer:1"), torch.ones(32), alpha)  # noqa: E731
    run(tiny, ragged, interventions=[steer(1.0)], readout=readout)
    run(tiny, ragged, interventions=[steer(1.0)], readout=readout)
    assert tiny.forward_passes == 1
    run(tiny, ragged, interventions=[steer(2.0)], readout=readout)
    assert tiny.forward_passes == 2


def test_next_token_readout_is_the_candidates_logits_at_the_last_real_token(arch):
    if arch != "llama":
        pytest.skip("causal LM only")
    from auditlens import load_subject
    from tiny_models import build, ragged_token_lists

    subject = load_subject(build("llama"))
    inputs = subject.encode(ragged_token_lists())
    got = run(subject, inputs, readout=NextTokenLogits(CANDIDATES)).scores
    for i in range(len(inputs)):
        n = int(inputs.lengths[i])
        with torch.no_grad():
            logits = subject.model(input_ids=inputs.input_ids[i : i + 1, :n]).logits[0, -1]
        torch.testing.assert_close(got[i], logits[list(CANDIDATES)], rtol=1e-4, atol=1e-5)
    # the target-minus-foil logit difference is the margin of label 0
    torch.testing.assert_close(logit_margin(got, torch.zeros(len(inputs))), got[:, 0] - got[:, 1])


def test_patch_needs_known_positions_mode(tiny):
    from auditlens import CheckError

    with pytest.raises(CheckError, match="patch positions must be one of all, last"):
        Patch(tiny.site("layer:0"), torch.zeros(1, 1, 32), torch.ones(1, 1), positions="first")
