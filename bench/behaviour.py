"""Examples per second of expect_invariant on a zoo model: batched (as shipped) against one forward
pass per input, side by side on the same generated pairs.

Last line: ``expect_invariant: B ex/s batched, S ex/s one-by-one (R x)``.
"""

from __future__ import annotations

import statistics
import time

from hypothesis import strategies as st

from auditlens import load_subject, run, session_cache
from auditlens.behaviour import expect_invariant, swap_words
from auditlens.behaviour.checks import _draw
from auditlens.behaviour.strategies import pairs
from auditlens.readout import readout_for
from auditlens.zoo import count_task

N = 400
# the task's own distribution (no ties), where the learned twin never fails: no shrinking is timed
LETTERS = st.lists(st.sampled_from(list(count_task.LETTERS)), min_size=11, max_size=11)
INPUTS = st.tuples(st.sampled_from(["m0", "m1"]), LETTERS.filter(lambda l: l.count("a") != l.count("b"))).map(
    lambda t: " ".join([t[0], *t[1]]))
SWAP = swap_words({"m0": "m1", "m1": "m0"})


def main() -> None:
    subject = load_subject("fixture:count-learned")
    readout = readout_for(subject)

    def batched():
        session_cache.clear()
        expect_invariant(subject, INPUTS, SWAP, max_examples=N, seed=0)

    def one_by_one():
        items = _draw(pairs(INPUTS, SWAP), N, 0)
        for base, changed in items:
            for text in (base, changed):
                run(subject, subject.encode([text]), readout=readout, cache=None)

    timings = {"batched": [], "one-by-one": []}
    for _ in range(3):
        for name, fn in (("batched", batched), ("one-by-one", one_by_one)):
            started = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - started)
    rate = {name: N / statistics.median(values) for name, values in timings.items()}
    print(f"{N} pairs on {subject.id}; median of 3 runs each, interleaved")
    print(f"expect_invariant: {rate['batched']:.0f} ex/s batched, {rate['one-by-one']:.0f} ex/s one-by-one "
          f"({rate['batched'] / rate['one-by-one']:.1f} x)")


if __name__ == "__main__":
    main()
