"""Positions: one vocabulary and one validator for reading activations and for editing them."""

import pytest
import torch

from auditlens import CaptureError, CheckError, Steer, ZeroAblation, capture, run
from auditlens.sites.positions import EDIT, READ, PositionError, check_position, edit_mask, index_of, reduce

# two examples, right-padded: lengths 3 and 5
MASK = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
ACTIVATION = torch.arange(2 * 5 * 2, dtype=torch.float32).reshape(2, 5, 2)
INDICES = torch.tensor([10, 11])


@pytest.mark.parametrize("position, expected", [("first", [0, 0]), ("last", [2, 4]), (1, [1, 1]), (-2, [1, 3])])
def test_reading_and_editing_name_the_same_token(position, expected):
    assert index_of(MASK, position).tolist() == expected
    read = reduce(ACTIVATION, MASK, position, "layer:0", INDICES)
    edited = edit_mask(ACTIVATION, MASK, position).squeeze(-1)
    assert torch.equal(read, ACTIVATION[torch.arange(2), torch.tensor(expected)])
    assert edited.nonzero().tolist() == [[0, expected[0]], [1, expected[1]]]


def test_mean_reads_only_the_real_tokens():
    mean = reduce(ACTIVATION, MASK, "mean", "layer:0", INDICES)
    assert torch.equal(mean[0], ACTIVATION[0, :3].mean(0)) and torch.equal(mean[1], ACTIVATION[1].mean(0))


def test_all_zeroes_the_padding_when_read_and_edits_only_real_tokens():
    read = reduce(ACTIVATION, MASK, "all", "layer:0", INDICES)
    assert read[0, 3:].abs().sum() == 0 and torch.equal(read[1], ACTIVATION[1])
    assert torch.equal(edit_mask(ACTIVATION, MASK, "all").squeeze(-1), MASK.float())


def test_an_index_past_a_short_example_is_an_error_when_read_and_clipped_when_edited():
    with pytest.raises(CaptureError, match=r"position 3 is outside examples \[10\] at site 'layer:0'"):
        reduce(ACTIVATION, MASK, 3, "layer:0", INDICES)
    assert edit_mask(ACTIVATION, MASK, 3).squeeze(-1).nonzero().tolist() == [[0, 2], [1, 3]]


def test_one_validator_one_error_for_reads_and_edits(tiny):
    with pytest.raises(PositionError) as read:
        capture(tiny, tiny.encode([[3, 4]]), "layer:0", position="middle")
    with pytest.raises(PositionError) as edit:
        ZeroAblation(tiny.site("layer:0"), positions="middle")
    # both are what their callers always raised, so existing handlers keep working
    assert isinstance(read.value, CaptureError) and isinstance(edit.value, CheckError)
    assert "position must be one of last, first, mean, max, all or an int index" in str(read.value)
    assert "positions must be one of all, last, first or an int index" in str(edit.value)


def test_mean_is_a_read_not_an_edit():
    check_position("mean", READ)
    with pytest.raises(PositionError, match="got 'mean'"):
        check_position("mean", EDIT, name="positions")
    with pytest.raises(PositionError, match="got True"):
        check_position(True, READ)


def test_an_edit_at_the_last_token_changes_what_is_read_there_only(tiny, ragged):
    site = tiny.site("layer:0")
    direction = torch.ones(32)
    clean = run(tiny, ragged, sites=[site], position="all", cache=None).activations["layer:0"]
    steered = run(tiny, ragged, sites=[site], position="all", interventions=[Steer(site, direction, 1.0, "last")],
                  cache=None).activations["layer:0"]
    changed = (steered - clean).abs().sum(-1) > 1e-6
    last = ragged.lengths - 1
    assert changed.nonzero().tolist() == [[row, int(last[row])] for row in range(len(ragged))]
