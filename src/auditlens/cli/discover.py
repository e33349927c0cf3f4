"""``auditlens discover``: draft an audit file from measurements (a circuit found by attribution patching,
with thresholds from what was measured)."""

from __future__ import annotations

from ..errors import AuditlensError


def add_parser(commands) -> None:
    discover = commands.add_parser("discover", help="draft an audit file: a circuit found by attribution "
                                                    "patching, with thresholds from what was measured")
    discover.add_argument("concept", help="a labelled concept of the probes directory (what the circuit must carry)")
    discover.add_argument("--pairs", required=True, help="a concept with counterfactual pairs, for the attribution")
    discover.add_argument("--model", required=True, help="the model: a directory, a hub id or fixture:NAME")
    discover.add_argument("--over", default="head:*.*", help="components to rank (default head:*.*; features:SITE "
                          "ranks the latents of a dictionary given with --dictionary)")
    discover.add_argument("--dictionary", action="append", default=[], metavar="SITE=DIR",
                          help="attach a dictionary (SAELens or sparsify directory) at SITE first; repeatable")
    discover.add_argument("--top", type=int, default=3, help="how many become the circuit (default 3)")
    discover.add_argument("--steps", type=int, default=1, help="attribution steps from base to source (integrated "
                          "gradients; more rank saturated components better; pairs of one length; default 1)")
    discover.add_argument("--das", default=None, metavar="AT", help="draft a das audit on the pairs too: a "
                          "1-dimensional subspace searched at AT (layer:* for a sweep, or a layer such as layer:1), "
                          "its IIA and selectivity bounds from what was measured")
    discover.add_argument("--probes", default="probes", help="the concept directory (default probes)")
    discover.add_argument("--out", default=None, help="the draft (default audits/discovered_CONCEPT.audit.yaml)")
    discover.set_defaults(run=run)


def run(args) -> int:
    import os
    from pathlib import Path

    from ..concepts.files import load_concept
    from ..declarative.discover import discover, write_draft
    from ..loading import load_subject

    if args.top < 1:
        raise AuditlensError(f"--top must be 1 or more; got {args.top}")
    subject = load_subject(args.model)
    out = Path(args.out or Path("audits") / f"discovered_{args.concept}.audit.yaml")
    dictionaries = {}
    for given in args.dictionary:
        site, equals, directory = given.partition("=")
        if not equals or not site or not directory:
            raise AuditlensError(f"--dictionary takes SITE=DIR, e.g. layer:3=dictionaries/layer-3; got {given!r}")
        subject.attach_dictionary(site, directory)
        dictionaries[site] = os.path.relpath(Path(directory).resolve(), out.resolve().parent)
    concept = load_concept(Path(args.probes) / f"{args.concept}.yaml")
    pairs = load_concept(Path(args.probes) / f"{args.pairs}.yaml")
    text, found = discover(subject, concept, pairs, over=args.over, top=args.top, steps=args.steps,
                           dictionaries=dictionaries, das_arguments={"at": args.das} if args.das else None)
    path = write_draft(text, out)
    das = f"; das IIA {found['das_iia']:.3f}, selectivity {found['das_selectivity']:.3f}" if "das_iia" in found else ""
    print(f"wrote {path}: circuit {', '.join(found['circuit'])} (necessity drop {found['accuracy_drop']:.3f}, "
          f"faithfulness {found['faithfulness']:.3f}, attribution vs patching Spearman "
          f"{found['rank_correlation']:.2f}{das}); review it before use")
    return 0
