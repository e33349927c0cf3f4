import pytest
import torch

from auditlens import SiteError, capture
from auditlens.sites.resolve import expand_sites
from tiny_models import EXPECTED_SITES, FINAL_NORM, LAYERS


def test_aliases_resolve_to_the_architectures_modules(tiny, arch):
    for alias, module_path in EXPECTED_SITES[arch].items():
        assert tiny.site(alias).module_path == module_path


def test_embed_reads_the_input_of_the_first_block(tiny):
    site = tiny.site("embed")
    assert site.reads_input and site.module_path.endswith(".0")


def test_negative_layer_index_counts_from_the_end(tiny):
    assert tiny.site("layer:-1").module_path == tiny.site(f"layer:{LAYERS - 1}").module_path


def test_raw_module_path_is_a_site(tiny, arch):
    path = EXPECTED_SITES[arch]["mlp:1"]
    assert tiny.site(path).module_path == path


def test_capture_equals_output_hidden_states(tiny, ragged, arch):
    # given every block's output, captured at all positions
    names = ["embed"] + [f"layer:{i}" for i in range(LAYERS)]
    captured = capture(tiny, ragged, names, position="all")
    # when the model reports its own hidden states
    with torch.no_grad():
        hidden = tiny.model(input_ids=ragged.input_ids, attention_mask=ragged.attention_mask,
                            output_hidden_states=True).hidden_states
    mask = ragged.attention_mask.unsqueeze(-1).float()
    # then they agree on every real token (the last one after a final norm, where the model has one)
    for i, name in enumerate(names):
        if FINAL_NORM[arch] and i == LAYERS:
            continue
        torch.testing.assert_close(captured[name] * mask, hidden[i] * mask, rtol=1e-5, atol=1e-5)


def test_last_block_matches_hidden_states_after_final_norm(arch):
    if not FINAL_NORM[arch]:
        pytest.skip("no final norm: covered by the equality test")
    from auditlens import load_subject
    from tiny_models import build, ragged_token_lists

    subject = load_subject(build(arch))
    inputs = subject.encode(ragged_token_lists())
    captured = capture(subject, inputs, f"layer:{LAYERS - 1}", position="all")
    final_norm = subject.model.transformer.ln_f if arch == "gpt2" else subject.model.model.norm
    with torch.no_grad():
        hidden = subject.model(input_ids=inputs.input_ids, attention_mask=inputs.attention_mask,
                               output_hidden_states=True).hidden_states[-1]
    mask = inputs.attention_mask.unsqueeze(-1).float()
    torch.testing.assert_close(final_norm(captured) * mask, hidden * mask, rtol=1e-5, atol=1e-5)


def test_unknown_alias_index_names_the_valid_range(tiny):
    with pytest.raises(SiteError, match=rf"has {LAYERS} blocks, so the index must be in -{LAYERS}..{LAYERS - 1}"):
        tiny.site(f"layer:{LAYERS}")


def test_unknown_site_lists_aliases_and_closest_paths(tiny, arch):
    misspelt = EXPECTED_SITES[arch]["mlp:1"] + "x"
    with pytest.raises(SiteError) as info:
        tiny.site(misspelt)
    message = str(info.value)
    assert "valid aliases: embed" in message and f"layer:0..{LAYERS - 1}" in message
    assert EXPECTED_SITES[arch]["mlp:1"] in message  # the closest real path is offered


def test_model_without_blocks_has_no_aliases_but_paths_work():
    from auditlens import load_subject

    subject = load_subject(torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 2)))
    assert subject.site("1").module_path == "1"
    with pytest.raises(SiteError, match="no aliases"):
        subject.site("layer:0")


def test_sweep_pattern_expands_to_every_block(tiny):
    assert [s.name for s in expand_sites(tiny.model, "layer:*")] == [f"layer:{i}" for i in range(LAYERS)]


def test_embed_sum_is_the_sum_of_the_embedding_tables_before_their_layernorm(tiny, ragged, arch):
    # given a model that normalises its embeddings (BERT, DistilBERT) or one whose embed is already their sum
    if arch in ("gpt2", "llama"):
        # then embed:sum is refused, saying why
        with pytest.raises(SiteError, match="already their sum"):
            tiny.site("embed:sum")
        return
    # when the sum is read at every position
    summed = capture(tiny, ragged, "embed:sum", position="all")
    # then it is the token, position (and token-type) rows added up, and embed is its LayerNorm
    embeddings = tiny.model.base_model.embeddings
    ids = ragged.input_ids
    positions = torch.arange(ids.shape[1]).expand_as(ids)
    expected = embeddings.word_embeddings.weight[ids] + embeddings.position_embeddings.weight[positions]
    if hasattr(embeddings, "token_type_embeddings"):
        expected = expected + embeddings.token_type_embeddings.weight[0]
    real = ragged.attention_mask.bool()
    assert torch.allclose(summed[real], expected[real], atol=1e-5)
    normalised = capture(tiny, ragged, "embed", position="all")
    assert torch.allclose(normalised[real], embeddings.LayerNorm(expected)[real], atol=1e-5)
