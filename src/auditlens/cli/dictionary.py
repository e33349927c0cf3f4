"""``auditlens dictionary train``: train a TopK SAE on a model's activations at a site, write it in
SAELens format, and say how well it stands in for the site."""

from __future__ import annotations

from pathlib import Path

from ..errors import AuditlensError


def add_parser(commands) -> None:
    dictionary = commands.add_parser("dictionary", help="sparse dictionaries (SAEs) of a model's activations")
    actions = dictionary.add_subparsers(dest="dictionary_command", required=True)
    train = actions.add_parser(
        "train", help="train a TopK SAE at a site and write it in SAELens format",
        description="Collect the model's activations at SITE on the concepts' inputs, train a TopK sparse "
                    "autoencoder on them (deterministic under --seed on one kind of CPU; on the GPU when the "
                    "model is on one), write cfg.json + sae_weights.safetensors (SAELens format), and print the "
                    "explained variance, L0, dead latents and the loss increase with the reconstruction in place.")
    train.add_argument("site", help="where it reads: layer:N, mlp:N, attn:N, embed, neurons:N or a module path")
    train.add_argument("--model", required=True, help="the model: a directory, a hub id or fixture:NAME")
    train.add_argument("--data", nargs="+", required=True, metavar="CONCEPT",
                       help="concepts in --probes whose inputs it is trained on (the first labelled one also "
                            "measures the loss increase)")
    train.add_argument("--width", type=int, default=128, help="latents (default 128)")
    train.add_argument("--k", type=int, default=4, help="latents active per vector (default 4)")
    train.add_argument("--seed", type=int, default=0, help="seed of the initialisation and batch order (default 0)")
    train.add_argument("--position", choices=("all", "last"), default="all",
                       help="train on every real token (default) or on each input's last token")
    train.add_argument("--probes", default="probes", help="the concept directory (default probes)")
    train.add_argument("--out", default=None, metavar="DIR",
                       help="where to write it (default dictionaries/MODEL/SITE)")
    dictionary.set_defaults(run=run)


def default_directory(model: str, site: str) -> Path:
    from ..declarative.dictionaries import directory_name

    return Path("dictionaries") / directory_name(model) / directory_name(site)


def run(args) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from ..concepts.files import load_concept
    from ..dictionaries import save_saelens
    from ..features.fit import evaluate, fit_dictionary
    from ..loading import load_subject

    if args.width < 2 or not 1 <= args.k < args.width:
        raise AuditlensError(f"--width must be 2 or more and --k from 1 to width - 1; got width {args.width}, "
                             f"k {args.k}")
    subject = load_subject(args.model)
    concepts = [load_concept(Path(args.probes) / f"{name}.yaml") for name in args.data]
    site = subject.site(args.site)
    with Progress(TextColumn("training"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
                  TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn(), transient=True,
                  console=None) as bar:
        task = bar.add_task("train", total=None, loss="-")

        def progress(step: int, total: int, loss: float) -> None:
            bar.update(task, completed=step, total=total, loss=f"{loss:.4g}")

        dictionary, stats = fit_dictionary(subject, site.name, concepts, width=args.width, k=args.k, seed=args.seed,
                                           position=args.position, progress=progress)
    out = Path(args.out) if args.out else default_directory(args.model, site.name)
    save_saelens(dictionary, out, hook_name=site.name, extra_metadata={"model": args.model, "data": args.data,
                                                                       "seed": args.seed, "position": args.position})
    labelled = next((c for c in concepts if c.examples and c.labels), None)
    print(f"wrote {out} (SAELens format: cfg.json, sae_weights.safetensors): {args.width} latents, k {args.k}, "
          f"trained in {stats.seconds:.1f} s on {args.position} tokens of {', '.join(args.data)}")
    print(f"  training data: explained variance {stats.explained_variance:.3f}, L0 {stats.l0:.2f}, "
          f"dead latents {stats.dead_fraction:.1%}")
    if subject.kind == "encoder":
        print(f"  loss increase: not measured ({args.model} is an encoder without an output head: no loss to read)")
    elif labelled is None:
        print("  loss increase: not measured (no concept with labels among --data)")
    else:
        measured = evaluate(subject, site.name, dictionary, labelled, args.position)
        print(f"  on {labelled.name}: " + ", ".join(measured.lines()))
    print(f"  attach it: subject.attach_dictionary({site.name!r}, {str(out)!r}), or in an audit file "
          f"`dictionaries: {{{site.name}: {out}}}`")
    return 0
