"""Results: one failure text for Python assertions and YAML expectations, keyword-built results, a
fitted eraser that names itself, one way to read answer tokens."""

import dataclasses
import textwrap

import pytest
from hypothesis import strategies as st

from auditlens import CheckError, LinearEraser, ProbeResult, Transform, capture, probe
from auditlens.behaviour import expect_label
from auditlens.declarative import load_audit_file
from auditlens.plugin.records import metric_comparison
from auditlens.readout import answer_token_ids


def test_the_assertion_and_the_yaml_expectation_say_the_same_thing(learned, concepts, tmp_path):
    result = probe(learned, concepts["more_a_than_b"], at="layer:0")
    path = tmp_path / "a.audit.yaml"
    path.write_text(textwrap.dedent("""\
        audits:
          - name: x
            probe: {concept: more_a_than_b, at: "layer:0"}
            expect: {accuracy: "<= 0.5"}
        """))
    (entry,) = load_audit_file(path, set(concepts))
    _, missed = entry.run(learned, concepts.__getitem__)
    rewritten = metric_comparison("<=", result.accuracy, 0.5)[0]
    assert missed == [rewritten]
    assert rewritten.startswith(f"accuracy = {float(result.accuracy):.4f} (95% CI [")
    assert rewritten.endswith("), expected <= 0.5")


def test_a_bound_on_the_left_reads_the_other_way_round(learned, concepts):
    result = probe(learned, concepts["more_a_than_b"], at="layer:0")
    assert metric_comparison("<=", 0.99, result.accuracy)[0].startswith("expected 0.99 <= accuracy = ")


def test_results_are_built_with_keywords_only():
    with pytest.raises(TypeError):
        ProbeResult("probe", "m", "layer:0", 10)
    assert all(f.kw_only for f in dataclasses.fields(ProbeResult))


def test_a_fitted_eraser_names_itself_and_erases(learned, concepts):
    concept = concepts["more_a_than_b"]
    features = capture(learned, concept.inputs(learned), "layer:1", position="last")
    eraser = LinearEraser.fit(features, concept.label_tensor(), concept.n_classes)
    again = LinearEraser.fit(features, concept.label_tensor(), concept.n_classes)
    assert eraser.key == again.key and eraser.key.startswith("leace:")
    erased = eraser(features)
    # LEACE leaves no linear signal: the class means of the erased features coincide
    labels = concept.label_tensor()
    gap = erased[labels == 1].mean(0) - erased[labels == 0].mean(0)
    assert float(gap.norm()) < 1e-3 * float(features.norm(dim=1).mean())
    transform = Transform(learned.site("layer:1"), eraser, positions="last")
    assert transform.key.endswith(f",last,{eraser.key})")


def test_a_transform_without_a_name_needs_a_fitted_object(learned):
    with pytest.raises(CheckError, match="give name="):
        Transform(learned.site("layer:0"), lambda h: h)


def test_answer_tokens_given_as_text_resolve_one_way_everywhere(concepts):
    from auditlens import load_subject

    subject = load_subject("fixture:backdoor-learned")
    as_text, as_ids = [" a", " b"], answer_token_ids(subject, ["a", "b"])
    # " a" is one word-level token, "a": the tokenizer encodes it; a vocabulary lookup would find no " a"
    assert answer_token_ids(subject, as_text) == as_ids
    assert subject.tokenizer.convert_tokens_to_ids(" a") != as_ids[0]
    inputs = st.sampled_from([t for t in concepts["first_letter"].examples if isinstance(t, str)])
    by_text = expect_label(subject, inputs, 0, answer_tokens=as_text, max_examples=20, seed=0)
    by_ids = expect_label(subject, inputs, 0, answer_tokens=as_ids, max_examples=20, seed=0)
    assert float(by_text.failure_rate) == float(by_ids.failure_rate)


def test_an_answer_of_two_tokens_is_refused(learned):
    from auditlens import ConceptError

    with pytest.raises(ConceptError, match="answer token 'a b' of the check is 2 tokens"):
        answer_token_ids(learned, ["a b"])
    assert answer_token_ids(learned, [3, 4]) == [3, 4]
