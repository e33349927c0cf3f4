"""The batched probe fitter against scikit-learn, the reference it replaces on binary label sets."""

import numpy as np
import pytest
import torch

from auditlens import capture, load_subject
from auditlens.checks.probe_fit import _restandardise, out_of_fold_predictions, sklearn_predictions
from auditlens.sites.resolve import expand_sites


def accuracies(predictions, label_sets):
    return [float((p == labels).mean()) for p, (labels, _) in zip(predictions, label_sets)]


@pytest.mark.parametrize("model, concept, sites", [
    ("fixture:count-learned", "more_a_than_b", "layer:*"),
    ("fixture:count-cheated", "more_a_than_b", "layer:*"),
    ("fixture:keyword-cheated", "short_input", "layer:*"),
    ("fixture:ends-learned", "same_ends", "layer:*"),
    ("fixture:minilm", "negation", ["embed", "layer:2", "layer:5"]),
])
def test_it_agrees_with_scikit_learn_within_a_hundredth_on_every_probe(concepts, model, concept, sites):
    subject, data = load_subject(model), concepts[concept]
    names = ["embed", *[s.name for s in expand_sites(subject.model, sites)]] if sites == "layer:*" else sites
    activations = capture(subject, data.inputs(subject), names)
    label_sets = [(data.label_tensor().numpy(), 5), (data.control_labels(0).numpy(), 5)]
    for site in names:
        features = activations[site].numpy()
        ours = accuracies(out_of_fold_predictions(features, label_sets, seed=0), label_sets)
        reference = accuracies([sklearn_predictions(features, labels, k, 0) for labels, k in label_sets], label_sets)
        assert np.allclose(ours, reference, atol=0.01), (site, ours, reference)


def test_the_same_seed_gives_the_same_predictions_and_folds_follow_the_seed():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 20)).astype(np.float32)
    labels = (features[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(int)
    first = out_of_fold_predictions(features, [(labels, 5)], seed=3)[0]
    assert np.array_equal(first, out_of_fold_predictions(features, [(labels, 5)], seed=3)[0])
    assert not np.array_equal(first, out_of_fold_predictions(features, [(labels, 5)], seed=4)[0])


def test_more_than_two_classes_are_fitted_by_scikit_learn():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(200, 8)).astype(np.float32)
    labels = np.digitize(features[:, 0], [-0.5, 0.5])
    ours = out_of_fold_predictions(features, [(labels, 4)], seed=0)[0]
    assert np.array_equal(ours, sklearn_predictions(features, labels, 4, 0))


def test_separable_data_with_constant_and_huge_features_is_fitted():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(200, 6)).astype(np.float32)
    features[:, 1] = 7.0  # constant: StandardScaler leaves it at zero
    features[:, 2] *= 1e4
    labels = np.where(features[:, 0] > 0, 5, 9)  # any two label values
    predictions = out_of_fold_predictions(features, [(labels, 5)], seed=0)[0]
    reference = sklearn_predictions(features, labels, 5, 0)
    assert set(predictions) <= {5, 9} and (predictions == labels).mean() >= 0.9
    assert abs((predictions == labels).mean() - (reference == labels).mean()) <= 0.01


def test_weights_moved_to_another_standardisation_compute_the_same_decisions():
    rng = np.random.default_rng(3)
    x = torch.as_tensor(rng.normal(size=(50, 4)) * 3 + 1, dtype=torch.float64)
    w0 = torch.as_tensor(rng.normal(size=(1, 5)))
    mean0, std0 = x.mean(0, keepdim=True), x.std(0, keepdim=True)
    mean1, std1 = x[:30].mean(0, keepdim=True), x[:30].std(0, keepdim=True)
    w1 = _restandardise((w0, mean0, std0), mean1, std1)

    def decisions(w, mean, std):
        return ((x - mean) / std) @ w[0, :-1] + w[0, -1]

    torch.testing.assert_close(decisions(w1, mean1, std1), decisions(w0, mean0, std0))
