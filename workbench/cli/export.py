"""``workbench export RUN_ID``, ``workbench analyse RUN_ID`` and ``workbench compare``."""

from __future__ import annotations

import argparse
from typing import Any

# CSV-agent run exports (core/csv_agent/export.py); named here so --help lists them
CSV_AGENT_FORMATS = ("sft-openai", "sft-trl", "rl-trl", "rl-verl", "rl-openrlhf")


def register(sub: Any) -> None:
    p = sub.add_parser("export", help="export a run's samples (or its analysis tables)")
    p.add_argument("run_id", type=int, metavar="RUN_ID")
    p.add_argument(
        "--format",
        choices=("jsonl", "csv", "parquet", "dataset", *CSV_AGENT_FORMATS),
        default="jsonl",
    )
    p.add_argument(
        "--keep-hint",
        action="store_true",
        help="CSV-agent SFT formats: keep the hint in hinted conversations (weight 0 in sft-openai)",
    )
    p.add_argument(
        "--shape",
        choices=CSV_AGENT_FORMATS,
        help="for --format dataset: a CSV-agent run's records of this shape as a datasets.Dataset",
    )
    p.add_argument("--out", help="output file (a directory for --format dataset)")
    p.add_argument("--stage", help="only samples of this stage (e.g. continue)")
    p.add_argument(
        "--tables", action="store_true", help="export the analysis tables instead of samples"
    )
    p.add_argument("--push", metavar="REPO_ID", help="push the dataset to the Hugging Face Hub")
    p.set_defaults(handler=export_command)

    a = sub.add_parser("analyse", aliases=["analyze"], help="print a run's headline tables")
    a.add_argument("run_id", type=int, metavar="RUN_ID")
    a.add_argument(
        "--json",
        action="store_true",
        help="print the run's metrics and tables as JSON (the numbers every screen shows)",
    )
    a.set_defaults(handler=analyse_command)

    c = sub.add_parser(
        "compare",
        help="paired comparison of two runs (e.g. two prompt versions) or two models in one run",
    )
    c.add_argument("run_a", type=int, metavar="RUN_A")
    c.add_argument("run_b", type=int, nargs="?", metavar="RUN_B", help="default: RUN_A")
    c.add_argument("--stage", help="stage to compare (default: continue, else solve)")
    c.add_argument("--model-a", help="only this model's samples on side A")
    c.add_argument("--model-b", help="only this model's samples on side B")
    c.set_defaults(handler=compare_command)


def export_command(args: argparse.Namespace) -> int:
    from workbench.core.analysis import export
    from workbench.core.errors import InputError
    from workbench.core.store import open_store

    if not args.out and not args.push:
        raise InputError("export: give --out PATH (or --push REPO_ID with --format dataset)")
    if args.format in CSV_AGENT_FORMATS or args.shape:
        return _export_csv_agent(args)
    if args.push and args.format != "dataset":
        raise InputError("export: --push needs --format dataset")
    store = open_store(args.db, create=False)
    try:
        if args.tables:
            n = export.export_tables(_flat_tables(store, args), args.format, args.out)
        elif args.push:
            rows = export.iter_sample_rows(store, args.run_id, stage=args.stage)
            n = export.push_dataset(rows, args.push)
            print(f"pushed {n} rows to {args.push}")
            if not args.out:
                return 0
            n = export.export_samples(store, args.run_id, args.format, args.out, stage=args.stage)
        else:
            n = export.export_samples(store, args.run_id, args.format, args.out, stage=args.stage)
    finally:
        store.close()
    print(f"wrote {n} rows to {args.out}")
    return 0


def _flat_tables(store: Any, args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """The run's report tables, then its metrics (as the metrics layer defines them)."""
    from workbench.core.analysis import run_metrics
    from workbench.core.analysis.rates import as_row
    from workbench.core.experiments.report import run_report
    from workbench.core.settings import load_settings

    bins = load_settings(args.config).bins
    tables = run_report(store, args.run_id, bins=bins)
    flat = {title: [as_row(r) for r in rows] for title, rows in tables.items()}
    return flat | {"metrics": [v.to_json() for v in run_metrics(store, args.run_id).values]}


def analyse_command(args: argparse.Namespace) -> int:
    import json

    from workbench.core.analysis import run_metrics
    from workbench.core.analysis.metrics import result_lines
    from workbench.core.analysis.rates import as_row
    from workbench.core.experiments.report import format_tables, run_report
    from workbench.core.settings import load_settings
    from workbench.core.store import open_store

    bins = load_settings(args.config).bins
    store = open_store(args.db, create=False)
    try:
        run = store.get_run(args.run_id)
        metrics = run_metrics(store, args.run_id)
        tables = run_report(store, args.run_id, bins=bins)
    finally:
        store.close()
    if getattr(args, "json", False):
        doc = {
            "run": {k: run[k] for k in ("id", "name", "kind", "status")},
            **metrics.to_json(),
            "tables": {t: [as_row(r) for r in rows] for t, rows in tables.items()},
        }
        print(json.dumps(doc, indent=2, default=str))
        return 0
    print(f"run {run['id']} {run['name'] or ''} ({run['kind']}, {run['status']})".rstrip())
    print()
    print("\n".join(["metrics", *("  " + line for line in result_lines(metrics))]))
    print()
    print(format_tables(tables))
    return 0


def compare_command(args: argparse.Namespace) -> int:
    from workbench.core.analysis import load_outcomes, paired_comparison
    from workbench.core.analysis.metrics import headline_counts
    from workbench.core.errors import InputError
    from workbench.core.store import open_store

    run_b = args.run_b if args.run_b is not None else args.run_a
    if run_b == args.run_a and not (args.model_a and args.model_b):
        raise InputError("compare: give RUN_B, or --model-a and --model-b to compare within a run")
    store = open_store(args.db, create=False)
    try:
        sides = []
        for run_id, model in ((args.run_a, args.model_a), (run_b, args.model_b)):
            run = store.get_run(run_id)
            if args.stage:
                sides.append(load_outcomes(store, run_id, stage=args.stage, model=model))
                continue
            # the samples the run's headline metric counts (recovery: perturbed continuations)
            outs = [
                o
                for o in load_outcomes(store, run_id, model=model)
                if headline_counts(str(run["kind"]), o)
            ]
            sides.append(outs)
    finally:
        store.close()
    label_a = f"run {args.run_a}" + (f" {args.model_a}" if args.model_a else "")
    label_b = f"run {run_b}" + (f" {args.model_b}" if args.model_b else "")
    r = paired_comparison(sides[0], sides[1], label_a=label_a, label_b=label_b)
    if not r.n_pairs:
        raise InputError("compare: no (problem, sample) pairs in common; nothing to compare")
    print(f"A = {label_a}: {r.accuracy_a}")
    print(f"B = {label_b}: {r.accuracy_b}")
    print(
        f"pairs {r.n_pairs} on {r.n_problems} problems: both right {r.both}, "
        f"A only {r.a_only}, B only {r.b_only}, neither {r.neither}"
    )
    print(
        f"A - B = {r.difference:+.1%} [{r.diff_low:+.1%}, {r.diff_high:+.1%}] "
        f"(bootstrap over problems, {r.confidence:.0%}); McNemar exact p = {r.p_value:.3g}"
    )
    return 0


def _export_csv_agent(args: argparse.Namespace) -> int:
    from workbench.core.csv_agent.export import export_run, save_dataset, to_dataset
    from workbench.core.errors import InputError
    from workbench.core.store import open_store

    if args.shape and args.format != "dataset":
        raise InputError("export: --shape goes with --format dataset")
    with open_store(args.db) as store:
        store.get_run(args.run_id)
        if args.shape and args.push:
            to_dataset(store, args.run_id, args.shape, keep_hint=args.keep_hint).push_to_hub(
                args.push, private=True
            )
            print(f"pushed to {args.push}")
            if not args.out:
                return 0
        if args.shape:
            n = save_dataset(store, args.run_id, args.shape, args.out, keep_hint=args.keep_hint)
        else:
            n = export_run(store, args.run_id, args.format, args.out, keep_hint=args.keep_hint)
    print(f"wrote {n} records to {args.out}")
    return 0
