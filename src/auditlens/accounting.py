"""Forward-pass accounting: what the audits needed, against what was run.

A *need* is one (model, input batch, interventions) combination some check asked about, whatever
it read from it (sites, positions, the readout). The lower bound on forward passes is the number of
distinct needs: no engine can answer them with fewer passes. ``run()`` logs a need on every call,
hit or miss, and the subject counts the passes it executed; their ratio is the waste.

Needs are short ids (hashes), so workers can ship them to the controller and the report can take
the union across audits that shared inputs.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Iterable, Sequence


def need_id(digest: str, intervention_keys: Sequence[str], n_examples: int, batch_size: int) -> str:
    """The id of a ``run()`` on inputs ``digest`` under ``intervention_keys``, in batches of ``batch_size``."""
    h = hashlib.blake2b(digest_size=8)
    h.update(digest.encode())
    for key in intervention_keys:
        h.update(b"\x00" + key.encode())
    return f"{h.hexdigest()}:{n_examples}:{batch_size}"


def count_direct_pass(subject, input_ids, attention_mask, purpose: str) -> None:
    """Account for a forward pass a check ran on the model itself, outside ``run()`` (a gradient pass, a
    batch of candidate inputs): executed once, and one need of its own (inputs, ``purpose``)."""
    h = hashlib.blake2b(digest_size=8)
    for tensor in (input_ids, attention_mask):
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    subject.forward_passes += 1
    need = need_id(h.hexdigest(), (purpose,), len(input_ids), len(input_ids))
    subject.needs.append(need)
    note_pass(subject, need, purpose, "the same inputs as an earlier pass")


_TRAINING_PASSES = itertools.count()  # numbers each training pass: no two share a need


def count_training_pass(subject, n_examples: int, purpose: str) -> None:
    """Account for a forward pass under parameters a check is training (DAS directions): each one runs
    under parameters no other pass had, so each is a need of its own, and none is a repeat."""
    subject.forward_passes += 1
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{purpose}:{next(_TRAINING_PASSES)}".encode())
    subject.needs.append(need_id(h.hexdigest(), (purpose,), n_examples, n_examples))


def note_pass(subject, need: str, reads: str, why: str) -> None:
    """Note that a pass runs for ``need``; where one already ran for its inputs and interventions, this
    one is above the lower bound: ``subject.repeats`` gets what it read, why, and its passes."""
    scope, n_examples, batch_size = need.rsplit(":", 2)
    if scope in subject.ran_scopes:
        subject.repeats.append({"why": f"{reads} on {n_examples} inputs again: {why}",
                                "passes": math.ceil(int(n_examples) / int(batch_size))})
    subject.ran_scopes.add(scope)


def lower_bound(needs: Iterable[str]) -> int:
    """Forward passes the needs cost at least: one per distinct (inputs, interventions, batch).

    The same inputs asked for with another batch size are the same need: batches are counted at the
    largest batch size that was used for them, which is the fewest passes that answers them all.
    """
    batches: dict[str, tuple[int, int]] = {}  # scope -> (examples, fewest batches)
    for need in needs:
        scope, n_examples, batch_size = need.split(":")
        count = math.ceil(int(n_examples) / int(batch_size))
        known = batches.get(scope)
        batches[scope] = (int(n_examples), count if known is None else min(known[1], count))
    return sum(count for _, count in batches.values())
