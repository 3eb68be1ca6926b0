"""``workbench import PATH|HF_NAME``, ``workbench import --sample`` and ``--traces NAME``."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from workbench.core.errors import InputError

if TYPE_CHECKING:
    from workbench.core.experiments.published_traces import TraceImport
    from workbench.core.store import Store

#: row layouts (``library.formats.FORMATS`` without "mapped"; spelled out: --help stays light)
SCHEMAS = ("gsm8k", "math", "numina", "ocw", "bbmistake", "processbench")
FILE_TYPES = ("jsonl", "json", "csv", "parquet")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "import",
        help="import problems from a file (JSONL/CSV/Parquet) or the Hugging Face hub",
        description=(
            "Import problems.  SOURCE is a local file, a folder of them (one dataset per file) or a hub dataset name such as "
            "openai/gsm8k (with --config main) or HuggingFaceH4/MATH-500.  Importing the same "
            "data again updates problems instead of duplicating them.  A CSV for the CSV agent "
            "is a table, not problems: give it with --table PATH (a plain `import data.csv` "
            "reads problems from the CSV)."
        ),
    )
    p.add_argument("source", nargs="?", help="file path or hub dataset name")
    p.add_argument(
        "--table",
        metavar="PATH",
        help="import a CSV as a table for the CSV agent (identity: the sha256 of its bytes; "
        "re-importing the same bytes is a no-op); --name names it",
    )
    p.add_argument(
        "--sample",
        nargs="?",
        const="default",
        metavar="SET",
        help="import a bundled offline sample set: default (GSM8K + MATH-500) or bbmistake "
        "(BIG-Bench Mistake traces with first-mistake labels)",
    )
    p.add_argument(
        "--traces",
        metavar="NAME",
        help="record bundled published model traces as a graded run (gsm8k-gpt3: GPT-3 6B and "
        "175B solutions to the sample GSM8K problems; needs --sample once)",
    )
    p.add_argument("--name", help="dataset id (default: file stem, or NAME-SPLIT for the hub)")
    p.add_argument("--config", dest="hf_config", help="hub dataset config (e.g. main)")
    p.add_argument("--split", default="test", help="hub split (default: test)")
    p.add_argument(
        "--format",
        dest="fmt",
        choices=(*SCHEMAS, *FILE_TYPES, "dabench"),
        help="row layout (gsm8k, math, numina, ocw, bbmistake, processbench) or file type; both are detected by default "
        "(dabench: a DABench folder as CSV-agent questions and tables)",
    )
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="map a column onto a field (question, answer, solution, id, subject, level, source)",
    )
    p.add_argument("--limit", type=int, help="keep N rows, sampled with --seed")
    p.add_argument("--seed", type=int, default=0, help="sampling seed for --limit (default 0)")
    p.set_defaults(handler=run_import)


def parse_mapping(items: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in items:
        field_name, sep, column = item.partition("=")
        if not sep or not field_name.strip() or not column.strip():
            raise InputError(f"--map {item!r}: expected FIELD=COLUMN")
        mapping[field_name.strip()] = column.strip()
    return mapping


def run_import(args: argparse.Namespace) -> int:
    from workbench.core.library import import_path, import_samples, report_lines
    from workbench.core.store import open_store

    if args.table:
        return _import_table(args)
    if args.fmt == "dabench":
        return _import_dabench(args)
    if not args.sample and not args.source and not args.traces:
        raise InputError("import: give a file or hub dataset name, --sample or --traces NAME")
    if args.limit is not None and args.limit < 1:
        raise InputError("--limit must be at least 1")
    if args.traces:
        from workbench.core.experiments.published_traces import trace_set

        trace_set(args.traces)  # an unknown name fails before anything is imported
    mapping = parse_mapping(args.map)
    with open_store(args.db) as store:
        if args.sample:
            reports = import_samples(store, args.sample)
        elif not args.source:
            reports = []
        else:
            reports = import_path(
                store,
                args.source,
                name=args.name,
                schema=args.fmt if args.fmt in SCHEMAS else None,
                file_format=args.fmt if args.fmt in FILE_TYPES else None,
                mapping=mapping or None,
                config=args.hf_config,
                split=args.split,
                limit=args.limit,
                seed=args.seed,
            )
        traces = _import_traces(store, args) if args.traces else None
    for report in reports:
        *skipped, summary = report_lines(report)
        for line in skipped:
            print(line, file=sys.stderr)
        print(summary)
    if traces is not None:
        print(f"traces {args.traces}: {traces.summary()}")
    return 1 if any(r.n_imported == 0 and r.n_skipped for r in reports) else 0


def _import_traces(store: Store, args: argparse.Namespace) -> TraceImport:
    from workbench.core.experiments.published_traces import import_traces
    from workbench.core.settings import load_settings

    return import_traces(store, args.traces, settings=load_settings(args.config))


def _import_table(args: argparse.Namespace) -> int:
    from workbench.core.csv_agent import import_table
    from workbench.core.store import open_store

    if args.source or args.sample or args.traces:
        raise InputError("import --table PATH takes no other source")
    with open_store(args.db) as store:
        done = import_table(store, args.table, name=args.name)
    for warning in done.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(done.summary())
    return 0


def _import_dabench(args: argparse.Namespace) -> int:
    from workbench.core.csv_agent.dabench import import_dabench
    from workbench.core.store import open_store

    if not args.source:
        raise InputError("import --format dabench DIR: give the DABench folder")
    with open_store(args.db) as store:
        done = import_dabench(store, args.source, name=args.name or "dabench")
    print(done.summary())
    return 0
