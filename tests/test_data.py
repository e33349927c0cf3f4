import json

import pytest
import torch

from auditlens import Concept, ConceptError, load_concept, load_subject


def write(path, text):
    path.write_text(text)
    return path


def test_inline_examples_with_label_names(tmp_path):
    concept = load_concept(write(tmp_path / "neg.yaml", """
labels: [positive, negative]
examples:
  - {text: "it is good", label: positive}
  - {text: "it is not good", label: negative}
"""))
    assert concept.name == "neg" and concept.labels == (0, 1) and concept.examples[1] == "it is not good"
    assert concept.label_name(1) == "negative"


def test_examples_from_a_jsonl_file_beside_the_spec(tmp_path):
    write(tmp_path / "rows.jsonl", "".join(json.dumps({"tokens": [3, 4 + i], "label": i % 2}) + "\n" for i in range(6)))
    concept = load_concept(write(tmp_path / "c.yaml", "file: rows.jsonl\n"))
    assert len(concept) == 6 and concept.examples[0] == (3, 4)


def test_templates_expand_every_slot_combination(tmp_path):
    concept = load_concept(write(tmp_path / "t.yaml", """
templates:
  - {template: "the {noun} is {adj}", label: 1}
  - {template: "the {noun} is not {adj}", label: 0}
slots: {noun: [cat, dog], adj: [good, fine, nice]}
"""))
    assert len(concept) == 12 and "the dog is not nice" in concept.examples
    # the control task keys on the lexical filling, shared across templates
    assert concept.groups[concept.examples.index("the cat is good")] == "cat|good"
    assert concept.groups[concept.examples.index("the cat is not good")] == "cat|good"


def test_pairs_with_expected_labels(tmp_path):
    concept = load_concept(write(tmp_path / "p.yaml", """
labels: ["no", "yes"]
pairs: [{base: "a b", source: "a c", label: "yes"}]
"""))
    assert concept.pairs[0].source == "a c" and concept.pairs[0].label == 1 and len(concept) == 0


@pytest.mark.parametrize("text, match", [
    ("examples: [{text: a, label: 1}, {text: b, label: 1}]", "has one class only"),
    ("description: nothing", "has no examples and no pairs"),
    ("exampels: []", "unknown key 'exampels'; did you mean 'examples'?"),
    ("labels: [x, y]\nexamples: [{text: a, label: z}]", r"examples\[0\].label is 'z'; expected an index or one of"),
    ("examples: [{words: a, label: 1}]", r"examples\[0\] needs 'text' \(text\) or 'tokens'"),
    ("templates: [{template: 'a {x}', label: 1}]\nslots: {y: [1]}", r"uses slot \{x\} but slots has only \['y'\]"),
    ("file: missing.jsonl", "the data file .*missing.jsonl does not exist"),
    ("examples: [unclosed", "not valid YAML"),
    ("- just\n- a list", "a concept file is a mapping"),
    ("!!python/object:os.system {}", "not valid YAML"),
    ("labels: [no, yes]\nexamples: [{text: a, label: 0}]", "were read as booleans .* quote them"),
])
def test_malformed_concept_files_name_the_file_and_the_key(tmp_path, text, match):
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(ConceptError, match=match) as info:
        load_concept(path)
    assert "bad.yaml" in str(info.value)


def test_a_label_typo_in_a_template_is_named_at_the_template_and_its_line(tmp_path):
    """Issue 37: it was reported at examples[0].label (the first sentence the template expands to), with no line."""
    path = write(tmp_path / "c.yaml", "labels: [negative, positive]\ntemplates:\n  - template: 'the {noun} was good'\n"
                                      "    label: postive\nslots: {noun: [film, meal]}\n")
    with pytest.raises(ConceptError) as info:
        load_concept(path)
    assert str(info.value) == (f"{path}:4: templates[0].label is 'postive'; expected an index or one of "
                               "['negative', 'positive']; did you mean 'positive'?")  # once, not once per filling


def test_every_error_of_a_concept_file_is_found_in_one_reading(tmp_path):
    from auditlens.concepts.files import read_concept_file

    path = write(tmp_path / "c.yaml", "labels: [no_, yes_]\nexampels: []\nexamples:\n  - {text: a, label: 0}\n"
                                      "  - {words: b, label: 1}\n  - {text: c, label: maybe}\n")
    concept, errors = read_concept_file(path)
    assert concept is None
    assert [str(e).split(": ", 1)[0] for e in errors] == [f"{path}:2", f"{path}:5", f"{path}:6"]
    assert "unknown key 'exampels'" in str(errors[0]) and "examples[1] needs 'text'" in str(errors[1])
    assert "examples[2].label is 'maybe'" in str(errors[2])
    with pytest.raises(ConceptError, match=r"unknown key 'exampels'.*\(2 more error\(s\) in this file: auditlens "
                                           r"validate .*c.yaml\)"):
        load_concept(path)


def test_labels_must_match_examples():
    with pytest.raises(ConceptError, match="has 2 examples but 1 labels"):
        Concept("c", examples=("a", "b"), labels=(0,))


def test_negative_or_non_integer_labels_are_refused():
    with pytest.raises(ConceptError, match="labels must be class indices"):
        Concept("c", examples=("a", "b"), labels=(0, -1))


def test_control_labels_follow_groups_and_the_seed():
    concept = Concept("c", examples=tuple(f"x{i}" for i in range(40)), labels=tuple(i % 2 for i in range(40)),
                      groups=tuple(f"g{i % 4}" for i in range(40)))
    control = concept.control_labels(seed=0)
    for g in range(4):  # one label per group
        assert len(set(control[g::4].tolist())) == 1
    assert torch.equal(control, concept.control_labels(seed=0))


def test_encoding_failure_names_the_concept():
    subject = load_subject("fixture:count-learned")
    concept = Concept("too-big", examples=((3, 999), (3, 4)), labels=(0, 1))
    with pytest.raises(ConceptError, match="concept 'too-big' \\(examples\\): example 0 has token ids outside"):
        concept.inputs(subject)


def test_answer_tokens_must_be_single_tokens(tmp_path):
    subject = load_subject("fixture:count-learned")
    concept = Concept("c", examples=("a", "b"), labels=(0, 1), answer_tokens=("a b", "c"))
    with pytest.raises(ConceptError, match="answer token 'a b' .* is 2 tokens"):
        concept.answer_token_ids(subject)
    assert Concept("c", examples=("a", "b"), labels=(0, 1), answer_tokens=("a", "b")).answer_token_ids(subject) == [3, 4]


def test_committed_count_probes_match_their_generator(tmp_path):
    from pathlib import Path

    from auditlens.zoo.probes import write_all as write_probes

    write_probes(tmp_path)
    committed = Path(__file__).parent.parent / "probes"
    for generated in tmp_path.iterdir():
        assert generated.read_text() == (committed / generated.name).read_text(), generated.name


def test_the_readme_concept_example_loads(tmp_path):
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = next(b.split("```", 1)[0] for b in readme.split("```yaml\n")[1:] if b.startswith("name: negation"))
    concept = load_concept(write(tmp_path / "negation.yaml", block))
    assert len(concept) == 8 and concept.label_names == ("affirmed", "negated")
    assert concept.labels[concept.examples.index("the film is not good")] == 1


@pytest.mark.parametrize("pair, match", [
    (("a b", "", 1), r"pairs\[0\] needs a non-empty base and source"),
    (("a b", "a c", 2), r"pairs\[0\] expects label 2; valid: 0..1"),
    (("a b", "a c", -1), r"pairs\[0\] expects label -1"),
])
def test_mismatched_counterfactual_pairs_are_refused(pair, match):
    from auditlens import CounterfactualPair

    with pytest.raises(ConceptError, match=match):
        Concept("c", pairs=(CounterfactualPair(*pair),), label_names=("no", "yes"))
