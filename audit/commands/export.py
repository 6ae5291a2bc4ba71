"""``lm-audit export RUN_DIR --format inspect|model-card|csv|parquet``: a run in other tools' formats.

- ``inspect``: one Inspect eval log (.json) per suite; open them with ``inspect view --log-dir DIR``
  or read them with ``inspect_ai.log.read_eval_log`` / ``inspect_ai.analysis.samples_df``;
- ``model-card``: a Hugging Face model-card section ("Bias, Risks, and Limitations" and
  "Evaluation"), its ``model-index`` metadata and ``.eval_results/*.yaml``; with ``--card
  README.md`` both go into that card, leaving the rest of it unchanged. A damaged, incomplete,
  failed or running run gets none (exit 2) unless ``--allow-damaged``, which states the damage in
  the YAML metadata itself;
- ``csv`` / ``parquet``: records, metrics, groups and gates tables.

Files go to RUN_DIR/export/<inspect|model-card|tables>/ unless ``--out`` says otherwise.
See docs/integrations.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from audit.export import FORMATS

    p = sub.add_parser("export", help="export a run (Inspect log, model card, CSV/Parquet)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder (holds manifest.json)")
    p.add_argument("--format", dest="formats", action="append", choices=FORMATS, required=True,
                   help="what to write (repeatable)")
    p.add_argument("--out", type=Path, help="output folder (default: RUN_DIR/export/<kind>)")
    p.add_argument("--card", type=Path, metavar="README.md",
                   help="model-card: also write the section and model-index into this card (created if absent)")
    p.add_argument("--hub-dataset", action="append", default=[], metavar="SUITE=OWNER/NAME",
                   help="model-card: the Hub Benchmark dataset a suite's results belong to "
                   "(default: the placeholder lm-audit/<suite>)")
    p.add_argument("--model-name", help="model-card: the model's name in model-index (default: the run's model)")
    p.add_argument("--source-url", metavar="URL", help="model-card: where the run's logs are published (https://...)")
    p.add_argument("--allow-damaged", action="store_true",
                   help="model-card: write it for a damaged, incomplete, failed or running run, with the damage "
                   "stated in the YAML metadata (refused by default)")
    p.set_defaults(func=run)


def parse_hub_datasets(items: list[str]) -> dict[str, str]:
    from audit.core.errors import UsageError

    out: dict[str, str] = {}
    for item in items:
        suite, sep, ds = item.partition("=")
        owner, slash, name = ds.strip().partition("/")
        if not sep or not suite.strip() or not slash or not owner or not name or " " in ds.strip():
            raise UsageError(f"--hub-dataset wants SUITE=OWNER/NAME (e.g. toxicity-rtp=allenai/real-toxicity-prompts), got '{item}'")
        out[suite.strip()] = ds.strip()
    return out


def run(args: argparse.Namespace) -> int:
    from audit.core.errors import UsageError
    from audit.export import export_run

    model_card_only = {"--card": args.card, "--hub-dataset": args.hub_dataset, "--model-name": args.model_name,
                       "--source-url": args.source_url, "--allow-damaged": args.allow_damaged}
    if "model-card" not in args.formats:
        given = [k for k, v in model_card_only.items() if v]
        if given:
            raise UsageError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} only to --format model-card")
    if args.source_url and not args.source_url.startswith("https://"):
        raise UsageError("--source-url must be an https:// address")
    if args.card is not None and args.card.exists() and not args.card.is_file():
        raise UsageError(f"--card: not a file: {args.card}")
    formats = list(dict.fromkeys(args.formats))
    if args.out is not None and len(formats) > 1 and {"csv", "parquet"} != set(formats):
        raise UsageError("--out with several --format values would mix them in one folder; export one at a time")
    hub = parse_hub_datasets(args.hub_dataset)
    for fmt in formats:
        paths = export_run(args.run_dir, fmt, args.out, card=args.card, hub_datasets=hub,
                           model_name=args.model_name, source_url=args.source_url,
                           allow_damaged=args.allow_damaged)
        for p in paths:
            print(f"{fmt}: {p}")
        if fmt == "inspect" and paths:
            print(f"view: inspect view --log-dir {paths[0].parent}")
        if fmt == "model-card" and not hub:
            print("note: .eval_results dataset ids are placeholders (lm-audit/<suite>); the Hub lists a result "
                  "only under a registered Benchmark dataset: map one with --hub-dataset SUITE=OWNER/NAME")
    return 0
