"""The count twins side by side: probe selectivity, erase accuracy drop, patch flip rates.

Last line: ``learned vs cheated: selectivity A/B, erase drop C/D, marker flip E/F``.
"""

from __future__ import annotations

from pathlib import Path

from auditlens import erase, load_concept, load_subject, patch, probe

PROBES = Path(__file__).resolve().parent.parent / "probes"


def main() -> None:
    concept = {name: load_concept(PROBES / f"{name}.yaml")
               for name in ("more_a_than_b", "count_in_distribution", "marker_swapped", "count_swapped")}
    rows = {}
    for name in ("count-learned", "count-cheated"):
        subject = load_subject(f"fixture:{name}")
        rows[name] = {
            "probe accuracy (layer:1)": probe(subject, concept["more_a_than_b"], at="layer:1").accuracy,
            "probe selectivity (layer:1)": probe(subject, concept["more_a_than_b"], at="layer:1").selectivity,
            "erase accuracy drop (layer:1)": erase(subject, concept["more_a_than_b"], at="layer:1",
                                                   data=concept["count_in_distribution"]).accuracy_drop,
            "patch flip rate, marker (layer:0)": patch(subject, concept["marker_swapped"], at="layer:0").flip_rate,
            "patch IIA, counts (layer:0)": patch(subject, concept["count_swapped"], at="layer:0").iia,
        }
    learned, cheated = rows["count-learned"], rows["count-cheated"]
    print(f"{'metric':<36}{'learned':>10}{'cheated':>10}")
    for metric in learned:
        print(f"{metric:<36}{learned[metric]:>10.3f}{cheated[metric]:>10.3f}")
    keys = list(learned)
    print(f"learned vs cheated: selectivity {learned[keys[1]]:.3f}/{cheated[keys[1]]:.3f}, "
          f"erase drop {learned[keys[2]]:.3f}/{cheated[keys[2]]:.3f}, "
          f"marker flip {learned[keys[3]]:.3f}/{cheated[keys[3]]:.3f}")


if __name__ == "__main__":
    main()
