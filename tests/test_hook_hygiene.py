"""Property: whatever sequence of nested interventions runs, and wherever an exception (even a
KeyboardInterrupt) escapes, the model ends with no hook of ours and bit-identical outputs."""

import contextlib

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditlens import ProjectOut, Steer, ZeroAblation, intervene, live_hook_count, load_subject
from tiny_models import build

SUBJECT = load_subject(build("gpt2"), id="tiny-gpt2")
INPUTS = SUBJECT.encode([[3, 4, 5, 6], [7, 8, 9]])
SITES = ["embed", "layer:0", "attn:1", "mlp:2", "layer:2"]


def output():
    with torch.no_grad():
        return SUBJECT.model(input_ids=INPUTS.input_ids, attention_mask=INPUTS.attention_mask).logits.clone()


CLEAN = output()
HOOK_DICTS = [(m._forward_hooks.copy(), m._forward_pre_hooks.copy()) for m in SUBJECT.model.modules()]


def intervention(kind, site, seed):
    vector = torch.randn(32, generator=torch.Generator().manual_seed(seed))
    site = SUBJECT.site(site)
    return {"zero": ZeroAblation(site), "steer": Steer(site, vector, 3.0), "project": ProjectOut(site, vector)}[kind]


layers = st.lists(st.tuples(st.sampled_from(["zero", "steer", "project"]), st.sampled_from(SITES),
                            st.integers(0, 9)), min_size=1, max_size=5)


class Boom(Exception):
    pass


@settings(max_examples=60, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers, st.integers(-1, 5), st.sampled_from([Boom, KeyboardInterrupt]), st.booleans())
def test_nested_interventions_always_leave_the_model_clean(stack, raise_at, error, forward_inside):
    with contextlib.suppress(Boom, KeyboardInterrupt):
        with contextlib.ExitStack() as contexts:
            for depth, (kind, site, seed) in enumerate(stack):
                contexts.enter_context(intervene(SUBJECT, intervention(kind, site, seed)))
                assert live_hook_count(SUBJECT.model) == depth + 1
                if forward_inside:
                    output()
                if depth == raise_at:
                    raise error()
    assert live_hook_count(SUBJECT.model) == 0
    assert [(m._forward_hooks, m._forward_pre_hooks) for m in SUBJECT.model.modules()] == HOOK_DICTS
    assert torch.equal(output(), CLEAN)
