"""High-level causal models: running and intervening, the safe expression language of their YAML, and the
counterfactual pairs they make for interchange interventions (no network is trained or loaded)."""

import builtins
import json
import re
from pathlib import Path

import pytest

from auditlens import CausalModel, Concept, ConceptError, interchange_pairs, load_causal_model, load_concept
from auditlens.causal import INPUT, Variable, parse_expression
from auditlens.concepts import with_variables

PROBES = Path(__file__).parent.parent / "probes"
COUNT = {"count_a": INPUT, "count_b": INPUT, "more": "count_a > count_b"}


def count_model(**options) -> CausalModel:
    return CausalModel(COUNT, output="more", **options)


def letter_counts(text: str) -> dict:
    words = text.split()
    return {"count_a": words.count("a"), "count_b": words.count("b"), "marker": words[0]}


def tiny_count_concept() -> Concept:
    """Four inputs whose counts are easy to follow by hand: (a, b) = (2, 1), (1, 2), (3, 1), (1, 3)."""
    texts = ("m0 a a b", "m0 a b b", "m1 a a a b", "m1 a b b b")
    return Concept("tiny", examples=texts, labels=(1, 0, 1, 0), label_names=("fewer", "more"),
                   variables=tuple(letter_counts(t) for t in texts), causal_model=count_model())


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# running and intervening

def test_run_gives_every_variable_its_value():
    assert count_model().run({"count_a": 3, "count_b": 1}) == {"count_a": 3, "count_b": 1, "more": True}


def test_intervening_on_an_input_moves_its_descendants():
    assert count_model().intervene({"count_a": 3, "count_b": 1}, {"count_a": 0})["more"] is False


def test_intervening_on_a_middle_variable_overrides_its_parents():
    model = CausalModel({"count_a": INPUT, "count_b": INPUT, "lead": "count_a - count_b", "more": "lead > 0"},
                        output="more")
    values = model.intervene({"count_a": 3, "count_b": 1}, {"lead": -2})
    assert values == {"count_a": 3, "count_b": 1, "lead": -2, "more": False}
    assert model.run({"count_a": 3, "count_b": 1})["lead"] == 2


def test_python_functions_and_variables_are_accepted():
    by_tuple = CausalModel({"a": INPUT, "b": None, "more": ("a", "b", lambda a, b: a > b)}, output="more")
    by_variable = CausalModel([Variable("a"), Variable("b"), Variable("more", ("a", "b"), max)], output="more")
    assert by_tuple.run({"a": 1, "b": 2})["more"] is False
    assert by_variable.run({"a": 1, "b": 2})["more"] == 2


def test_the_variables_are_computed_whatever_order_they_are_written_in():
    model = CausalModel({"more": "lead > 0", "lead": "a - b", "a": INPUT, "b": INPUT}, output="more")
    assert model.order[-1] == "more" and model.inputs == ("a", "b")
    assert model.run({"a": 2, "b": 1})["more"] is True


def test_extra_values_in_the_inputs_are_ignored():
    assert count_model().run({"count_a": 1, "count_b": 0, "marker": "m1"})["more"] is True


def test_labels_map_output_values_to_label_names():
    model = count_model(labels={False: "fewer", True: "more"})
    assert model.label({"count_a": 3, "count_b": 1}, label_names=("fewer", "more")) == 1
    assert model.label({"count_a": 3, "count_b": 1}, {"count_b": 5}, label_names=("fewer", "more")) == 0


def test_a_bool_output_without_labels_is_the_label_index():
    assert count_model().label({"count_a": 0, "count_b": 1}) == 0


# errors of a model

@pytest.mark.parametrize("variables, output, match", [
    ({"count_a": INPUT, "more": "count_a > count_c"}, "more",
     r"variable 'more' reads 'count_c', which is not a variable \(did you mean 'count_a'\?\); variables: count_a, more"),
    ({"a": INPUT, "x": "y + a", "y": "x + 1", "z": "y"}, "z", r"the variables form a cycle: x -> y -> x"),
    ({"a": INPUT, "self_made": "self_made + a"}, "self_made", r"cycle: self_made -> self_made"),
    (COUNT, "mor", r"output 'mor' is not a variable \(did you mean 'more'\?\); variables: count_a, count_b, more"),
    ({"more": "1 > 0"}, "more", r"no input variable; declare the variables whose values the examples give as 'input'"),
    ({"a": INPUT, "2b": "a"}, "2b", r"variable '2b' is not a name"),
    ({"a": INPUT, "len": "a"}, "len", r"variable 'len' is reserved"),
    ({"a": INPUT, "b": 3}, "b", r"variable 'b' is 3; give 'input', an expression such as 'a > b'"),
])
def test_a_malformed_model_is_refused_naming_the_variable(variables, output, match):
    with pytest.raises(ConceptError, match=match):
        CausalModel(variables, output=output)


def test_missing_input_values_are_named_with_the_inputs_expected():
    with pytest.raises(ConceptError, match=r"no value for the input\(s\) count_b; the model's inputs are count_a, "
                                           r"count_b \(given: count_a, cont_b\)"):
        count_model().run({"count_a": 1, "cont_b": 2})


def test_an_intervention_on_an_unknown_variable_lists_the_variables():
    with pytest.raises(ConceptError, match=r"cannot intervene on 'count': not a variable .*variables: count_a"):
        count_model().intervene({"count_a": 1, "count_b": 2}, {"count": 3})


@pytest.mark.parametrize("output, names, match", [
    ("count_a", ("fewer", "more"), r"output count_a = 5 is not a label \(the concept's labels are \['fewer', 'more'\]\)"),
    ("marker", None, r"output marker = 'm1' is not a label \(a label is an index 0, 1, ...\); give the model labels: "
                     r"mapping its output values to labels"),
])
def test_an_output_that_is_not_a_label_is_refused(output, names, match):
    model = CausalModel({**COUNT, "marker": INPUT}, output=output)
    with pytest.raises(ConceptError, match=match):
        model.label({"count_a": 5, "count_b": 1, "marker": "m1"}, label_names=names)


def test_an_output_value_the_labels_do_not_map_is_refused():
    model = CausalModel(COUNT, output="count_a", labels={0: "fewer", 1: "more"})
    with pytest.raises(ConceptError, match=r"output count_a = 2 has no label; labels maps \[0, 1\]"):
        model.label({"count_a": 2, "count_b": 0}, label_names=("fewer", "more"))


def test_a_failing_expression_names_the_variable_and_its_inputs():
    model = CausalModel({"a": INPUT, "b": INPUT, "ratio": "a / b"}, output="ratio")
    with pytest.raises(ConceptError, match=r"computing ratio = a / b with a=1, b=0 failed: ZeroDivisionError"):
        model.run({"a": 1, "b": 0})


# the expression language

@pytest.mark.parametrize("text, values, expected", [
    ("count_a > count_b", {"count_a": 2, "count_b": 1}, True),
    ("1 < a <= 3", {"a": 3}, True),
    ("(a + b) * 2 - a // 2 % 3 / 1", {"a": 4, "b": 1}, 8.0),
    ("not a and b or c", {"a": False, "b": False, "c": "x"}, "x"),
    ("'yes' if abs(a - b) >= 2 else 'no'", {"a": 1, "b": 4}, "yes"),
    ("min(a, b) + max(a, b) + len(word)", {"a": 1, "b": 4, "word": "abc"}, 8),
    ("word in ('m0', 'm1') and -a < 0", {"word": "m1", "a": 1}, True),
    ("True != (a == 1.5)", {"a": 1.5}, False),
])
def test_an_expression_computes_what_python_would(text, values, expected):
    expression = parse_expression(text)
    assert expression(*(values[name] for name in expression.parents)) == expected


def test_the_parents_of_an_expression_are_the_names_it_reads_in_order():
    assert parse_expression("max(b, a) > b + c").parents == ("b", "a", "c")


@pytest.mark.parametrize("text, refused", [
    ("__import__('os').system('echo hi')", "calling"),
    ("count_a.__class__", "attribute access"),
    ("().__class__.__bases__", "attribute access"),
    ("open('/etc/passwd')", "calling 'open'"),
    ("(lambda: 1)()", "calling"),
    ("[x for x in count_a]", "ListComp"),
    ("count_a[0]", "Subscript"),
    ("2 ** 100000", "the operator \\*\\*"),
    ("count_a << 1", "the operator <<"),
    ("count_a is None", "the comparison is"),
    ("None", "the constant None"),
    ("f'{count_a}'", "JoinedStr"),
    ("(x := 1)", "NamedExpr"),
    ("max(*count_a)", "a keyword argument or \\* in a call"),
    ("__builtins__", "the name '__builtins__'"),
])
def test_an_unsafe_expression_is_refused_with_what_is_allowed(text, refused):
    with pytest.raises(ConceptError, match=f"{refused}.* is not allowed; allowed: parent variable names"):
        parse_expression(text)


@pytest.mark.parametrize("text, match", [
    ("count_a >", r"'count_a >' is not a valid expression \(invalid syntax\)"),
    ("", "an expression is a non-empty string"),
    ("a" * 501, "at most 500 are allowed"),
    ("a = 1", "not a valid expression"),
])
def test_a_malformed_expression_is_refused(text, match):
    with pytest.raises(ConceptError, match=match):
        parse_expression(text)


def test_string_repetition_is_refused_when_run():
    model = CausalModel({"n": INPUT, "big": "'x' * n"}, output="big")
    with pytest.raises(ConceptError, match=r"\* multiplies numbers; got str and int"):
        model.run({"n": 10**9})


def test_expressions_run_without_eval_or_exec(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("eval/exec was called")

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    model = load_causal_model({"variables": {"a": "input", "b": "input", "more": "a > b if a else False"},
                               "output": "more"})
    assert model.run({"a": 2, "b": 1})["more"] is True


# YAML

def test_a_model_loads_from_a_mapping_its_own_file_or_a_concept_file(tmp_path):
    data = {"variables": {"count_a": "input", "count_b": "input", "more": "count_a > count_b"}, "output": "more"}
    own = write(tmp_path / "model.yaml", "variables: {count_a: input, count_b: input, more: count_a > count_b}\n"
                                         "output: more\nlabels: {false: fewer, true: more}\n")
    models = [load_causal_model(data), load_causal_model(own), load_causal_model(PROBES / "count_variables.yaml")]
    for model in models:
        assert model.inputs == ("count_a", "count_b") and model.variables["more"].parents == ("count_a", "count_b")
        assert model.run({"count_a": 1, "count_b": 4})["more"] is False
    assert models[1].labels == {False: "fewer", True: "more"} and models[1].source == str(own)


@pytest.mark.parametrize("text, match", [
    ("variables: {a: input, more: a.__class__}\noutput: more\n", r"m.yaml:1: causal_model.variables.more: "
     r"'a.__class__': attribute access \('a.__class__'\) is not allowed; allowed: parent variable names"),
    ("variables:\n  a: input\n  more: __import__('os').system('x')\noutput: more\n",
     r"m.yaml:3: causal_model.variables.more: .*calling .*__import__.* is not allowed"),
    ("variables: {a: input, more: a > b}\noutput: more\n", r"m.yaml:1: causal model: variable 'more' reads 'b'"),
    ("variables: {a: input, more: a > 1}\nouput: more\n", r"m.yaml:2: causal_model: unknown key 'ouput'; "
                                                         r"did you mean 'output'\? Allowed: variables, output, labels"),
    ("variables: {a: input, more: a > 1}\n", r"m.yaml:1: causal_model needs output: the variable the answer reads \("
                                             r"one of a, more\)"),
    ("variables: {a: input, more: 3}\noutput: more\n", r"causal_model.variables.more is 3; give 'input' or an "
                                                       r"expression as a string"),
    ("variables: [a, b]\noutput: b\n", r"m.yaml:1: causal_model.variables maps each variable's name"),
    ("variables: {a: input}\noutput: a\nlabels: [no, yes]\n", r"m.yaml:3: causal model: labels maps output values"),
    ("variables: {a: input\n", r"m.yaml:2: not valid YAML"),
    ("- a\n- b\n", r"m.yaml:1: a causal model is a mapping of variables, output, labels"),
])
def test_a_malformed_model_file_names_the_file_the_line_and_the_key(tmp_path, text, match):
    with pytest.raises(ConceptError, match=match):
        load_causal_model(write(tmp_path / "m.yaml", text))


def test_a_missing_model_file_is_named(tmp_path):
    with pytest.raises(ConceptError, match="no causal model file at .*nothing.yaml"):
        load_causal_model(tmp_path / "nothing.yaml")


# concept files with variables

def test_a_concept_file_reads_its_rows_variables_and_causal_model(tmp_path):
    write(tmp_path / "rows.jsonl", "".join(json.dumps({"text": t, "label": l, "variables": letter_counts(t)}) + "\n"
                                           for t, l in [("m0 a a b", "more"), ("m1 a b b", "fewer")]))
    concept = load_concept(write(tmp_path / "c.yaml", "labels: [fewer, more]\nfile: rows.jsonl\nexamples:\n"
                                 "  - {text: m0 a, label: more, variables: {count_a: 1, count_b: 0}}\ncausal_model:\n"
                                 "  variables: {count_a: input, count_b: input, more: count_a > count_b}\n"
                                 "  output: more\n  labels: {false: fewer, true: more}\n"))
    assert concept.variables == ({"count_a": 1, "count_b": 0}, letter_counts("m0 a a b"), letter_counts("m1 a b b"))
    assert [concept.causal_model.label(v, label_names=concept.label_names) for v in concept.variables] == [1, 1, 0]
    assert concept.causal_model.source == str(tmp_path / "c.yaml")


def test_concept_files_without_variables_load_as_before():
    concept = load_concept(PROBES / "more_a_than_b.yaml")
    assert concept.variables is None and concept.causal_model is None and len(concept) == 400


MODEL = "causal_model:\n  variables: {count_a: input, count_b: input, more: count_a > count_b}\n  output: more\n"


@pytest.mark.parametrize("rows, extra, match", [
    ([{"text": "a", "label": 1, "variables": {"count_a": 1}}, {"text": "b", "label": 0, "variables": {"count_a": 0}}],
     MODEL, r"rows.jsonl:1: the row.variables has no value for count_b; the causal model's inputs are count_a, count_b"),
    ([{"text": "a", "label": 1, "variables": {"count_a": 1, "count_b": 0}}, {"text": "b", "label": 0}],
     MODEL, r"rows.jsonl:2: the row has no 'variables'; the concept's causal model needs values for count_a, count_b"),
    ([{"text": "a", "label": 1, "variables": {"count_a": 1}}, {"text": "b", "label": 0}],
     "", r"rows.jsonl:2: the row has no 'variables' but other rows have; give every example its variables"),
    ([{"text": "a", "label": 1, "variables": [1, 0]}, {"text": "b", "label": 0, "variables": {"count_a": 0}}],
     "", r"rows.jsonl:1: the row.variables maps variable names to numbers, strings, true/false or lists of them"),
    ([{"text": "a", "label": 1}, {"text": "b", "label": 0}], MODEL.replace("count_a > count_b", "count_a.real"),
     r"c.yaml:4: causal_model.variables.more: 'count_a.real': attribute access"),
    ([{"text": "a", "label": 1}, {"text": "b", "label": 0}], MODEL + "  labels: {false: fewer, true: mor}\n",
     r"c.yaml:6: causal model \(.*c.yaml\): output more = True is not a label \(the concept's labels are \['fewer', "
     r"'more'\]\)"),
])
def test_a_concept_file_whose_variables_do_not_fit_its_model_is_refused(tmp_path, rows, extra, match):
    write(tmp_path / "rows.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(ConceptError, match=match):
        load_concept(write(tmp_path / "c.yaml", "labels: [fewer, more]\nfile: rows.jsonl\n" + extra))


def test_a_concept_built_in_python_checks_its_variables():
    with pytest.raises(ConceptError, match="has 2 examples but 1 mappings of variables"):
        Concept("c", examples=("a", "b"), labels=(0, 1), variables=({"count_a": 1},))
    with pytest.raises(ConceptError, match="example 1 has no value for count_b; the causal model's inputs are"):
        Concept("c", examples=("a", "b"), labels=(0, 1), causal_model=count_model(),
                variables=({"count_a": 1, "count_b": 0}, {"count_a": 0}))


def test_the_count_variables_probe_holds_the_count_tasks_examples_with_their_counts():
    counts = load_concept(PROBES / "count_variables.yaml")
    source = load_concept(PROBES / "more_a_than_b.yaml")
    derived = with_variables(source, letter_counts, counts.causal_model)
    assert counts.examples == source.examples and counts.labels == source.labels
    assert counts.variables == derived.variables
    model = counts.causal_model
    assert [model.label(values, label_names=counts.label_names) for values in counts.variables] == list(counts.labels)


def test_with_variables_derives_them_from_each_example():
    concept = with_variables(Concept("c", examples=("m0 a b b", "m1 a"), labels=(0, 1)), letter_counts)
    assert concept.variables == ({"count_a": 1, "count_b": 2, "marker": "m0"}, {"count_a": 1, "count_b": 0,
                                                                                 "marker": "m1"})


# counterfactual pairs

# (a, b) of the tiny concept's texts; interchanging count_a expects "more" when the source's a outnumbers the base's b
BY_HAND = {("m0 a a b", "m0 a b b"): 0, ("m0 a a b", "m1 a a a b"): 1, ("m0 a a b", "m1 a b b b"): 0,
           ("m0 a b b", "m0 a a b"): 0, ("m0 a b b", "m1 a a a b"): 1, ("m0 a b b", "m1 a b b b"): 0,
           ("m1 a a a b", "m0 a a b"): 1, ("m1 a a a b", "m0 a b b"): 0, ("m1 a a a b", "m1 a b b b"): 0,
           ("m1 a b b b", "m0 a a b"): 0, ("m1 a b b b", "m0 a b b"): 0, ("m1 a b b b", "m1 a a a b"): 0}


def test_each_pair_expects_the_models_output_with_the_variable_taken_from_the_source():
    concept = tiny_count_concept()
    pairs = interchange_pairs(concept.causal_model, concept, "count_a", seed=0, n=8)
    assert len(pairs.pairs) == 8
    for pair in pairs.pairs:
        assert pair.label == BY_HAND[(pair.base, pair.source)], pair
    assert pairs.name == "tiny interchange count_a" and pairs.label_names == ("fewer", "more")


def test_interchanging_an_intermediate_variable_expects_the_sources_value_downstream():
    model = CausalModel({"count_a": INPUT, "count_b": INPUT, "lead": "count_a - count_b", "more": "lead > 0"},
                        output="more")
    concept = tiny_count_concept()
    pairs = interchange_pairs(model, concept, "lead", seed=3, n=6)
    lead = {t: v["count_a"] - v["count_b"] for t, v in zip(concept.examples, concept.variables)}
    assert all(pair.label == int(lead[pair.source] > 0) for pair in pairs.pairs)


def test_pairs_are_the_same_under_the_same_seed_and_differ_under_another():
    concept = with_variables(load_concept(PROBES / "more_a_than_b.yaml"), letter_counts, count_model())
    first, again = (interchange_pairs(concept.causal_model, concept, "count_b", seed=7, n=50) for _ in range(2))
    other = interchange_pairs(concept.causal_model, concept, "count_b", seed=8, n=50)
    assert first.pairs == again.pairs and first.description == again.description
    assert first.pairs != other.pairs


@pytest.mark.parametrize("share, n", [(0.5, 400), (0.25, 100), (1.0, 40), (0.0, 40)])
def test_the_share_of_pairs_whose_expected_label_changes_is_honoured(share, n):
    concept = load_concept(PROBES / "count_variables.yaml")
    model = concept.causal_model
    pairs = interchange_pairs(model, concept, "count_a", seed=1, n=n, changed_share=share)
    base_label = dict(zip(concept.examples, concept.labels))
    changed = sum(pair.label != base_label[pair.base] for pair in pairs.pairs)
    assert len(pairs.pairs) == n and changed == round(n * share)
    assert f"{changed} of {n} pairs" in pairs.description
    assert pairs.answer_tokens == concept.answer_tokens and pairs.source == concept.source


def test_a_variable_the_output_does_not_read_cannot_make_changed_pairs():
    concept = with_variables(tiny_count_concept(), letter_counts,
                             CausalModel({**COUNT, "marker": INPUT}, output="more"))
    with pytest.raises(ConceptError, match="setting marker to its value on another example never changes the expected "
                                           "label in .* draws, so changed_share=0.5 cannot be met; the output does "
                                           "not depend on it"):
        interchange_pairs(concept.causal_model, concept, "marker", seed=0)


def test_when_one_kind_runs_short_fewer_pairs_keep_the_share():
    concept = tiny_count_concept()  # 12 ordered pairs, 5 of which change the label (see BY_HAND)
    pairs = interchange_pairs(concept.causal_model, concept, "count_a", seed=0, n=12)
    changed = sum(pair.label != concept.labels[concept.examples.index(pair.base)] for pair in pairs.pairs)
    assert (changed, len(pairs.pairs)) == (5, 10)
    assert "5 of 10 pairs (50%)" in pairs.description and "12 were asked for" in pairs.description


@pytest.mark.parametrize("arguments, match", [
    ({"variable": "count_aa"}, r"'count_aa' is not a variable of the causal model \(did you mean 'count_a'\?\)"),
    ({"changed_share": 1.5}, r"changed_share is the share of pairs .* between 0 and 1; got 1.5"),
    ({"n": 0}, r"n is how many pairs to make, a whole number of 1 or more; got 0"),
])
def test_bad_arguments_to_interchange_pairs_are_refused(arguments, match):
    concept = tiny_count_concept()
    with pytest.raises(ConceptError, match=match):
        interchange_pairs(concept.causal_model, concept, **{"variable": "count_a", "seed": 0, **arguments})


def test_examples_without_variables_are_refused():
    concept = Concept("plain", examples=("a", "b"), labels=(0, 1))
    with pytest.raises(ConceptError, match=re.escape("its examples carry no variables; give each row \"variables\": "
                                                     "{'count_a': ..., 'count_b': ...} or use with_variables")):
        interchange_pairs(count_model(), concept, "count_a", seed=0)


def test_a_model_that_disagrees_with_the_labels_is_refused():
    concept = tiny_count_concept()
    flipped = CausalModel({**COUNT, "more": "count_a < count_b"}, output="more")
    with pytest.raises(ConceptError, match=r"the causal model disagrees with 4 of 4 labels \(first: example 0 'm0 a a b' "
                                           r"is labelled 'more', the model says 'fewer'"):
        interchange_pairs(flipped, concept, "count_a", seed=0)
