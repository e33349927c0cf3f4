"""Wall time of a probe sweep over every block of the 6-layer MiniLM on 4,000 templated sentences,
split into forward passes (capture) and probe fitting (5-fold CV, probe + control task); then the
same fits by scikit-learn (the reference, and the fitter before the batched one) on the same
activations, side by side, with the largest accuracy difference between the two.

Last line: ``probe sweep: T s (forward F s, fitting P s; scikit-learn S s, X times slower; largest
accuracy difference D)``.
"""

from __future__ import annotations

import itertools
import random
import time

from auditlens import Concept, capture, load_subject, probe, session_cache
from auditlens.checks.probe_fit import sklearn_predictions

SUBJECTS = ["dog", "cat", "teacher", "doctor", "child", "farmer", "singer", "pilot", "nurse", "lawyer"]
VERBS = ["runs", "sleeps", "waits", "laughs", "sings", "works", "reads", "writes"]
PLACES = ["in the park", "at home", "near the river", "in the city", "by the sea", "at school", "on the hill",
          "in the garden", "at the station", "in the kitchen"]
ADVERBS = ["today", "often", "quietly", "again", "slowly"]


def plural_subject_concept(n: int, seed: int = 0) -> Concept:
    """'the dog runs in the park today' (singular, 0) vs 'the dogs run ...' (plural, 1)."""
    rng = random.Random(seed)
    combos = list(itertools.product(SUBJECTS, VERBS, PLACES, ADVERBS))
    rng.shuffle(combos)
    examples, labels = [], []
    for i in range(n):
        noun, verb, place, adverb = combos[i % len(combos)]
        plural = i % 2
        sentence = (f"the {noun}s {verb[:-1]} {place} {adverb}" if plural else f"the {noun} {verb} {place} {adverb}")
        examples.append(sentence)
        labels.append(plural)
    return Concept("plural_subject", examples=tuple(examples), labels=tuple(labels))


def main() -> None:
    subject = load_subject("fixture:minilm")
    concept = plural_subject_concept(4000)
    session_cache.clear()
    started = time.perf_counter()
    sweep = probe(subject, concept, at="layer:*")
    total = time.perf_counter() - started
    forward = sum(float(r.seconds_forward) for r in sweep.results)
    fitting = sum(float(r.seconds_fit) for r in sweep.results)
    print(sweep.explain())
    print(f"forward passes: {subject.forward_passes}; examples: {len(concept)}; layers: {len(sweep.results)}")
    labels, control = concept.label_tensor().numpy(), concept.control_labels(0).numpy()
    activations = capture(subject, concept.inputs(subject), [r.site for r in sweep.results])  # cached
    started, worst = time.perf_counter(), 0.0
    for result in sweep.results:
        features = activations[result.site].numpy()
        accuracy = (sklearn_predictions(features, labels, 5, 0) == labels).mean()
        control_accuracy = (sklearn_predictions(features, control, 5, 0) == control).mean()
        worst = max(worst, abs(accuracy - float(result.accuracy)), abs(control_accuracy - float(result.control_accuracy)))
    reference = time.perf_counter() - started
    print(f"probe sweep: {total:.1f} s (forward {forward:.1f} s, fitting {fitting:.1f} s; scikit-learn "
          f"{reference:.1f} s, {reference / fitting:.1f} times slower; largest accuracy difference {worst:.4f})")


if __name__ == "__main__":
    main()
