#!/usr/bin/env python
"""Compare complete runs: a table (terminal, CSV, Markdown, LaTeX) and plots, mean +/- std over seeds, and every model
paired with the winner on the same test examples (bootstrap intervals, McNemar or Wilcoxon p).

    python scripts/compare.py --dataset fortunes
    python scripts/compare.py --dataset fortunes --model minilm,lstm --out_dir runs/_compare/fortunes
    python scripts/compare.py --dataset fortunes --bootstrap_samples 10000 --bootstrap_seed 7
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hf_project import cli


def main(argv: list[str] | None = None) -> str:
    from hf_project.compare import to_terminal, write_outputs
    from hf_project.config import DEFAULT_SEED
    from hf_project.errors import UserError
    from hf_project.report import group_runs, paired_by_data_set, select_runs, table_rows
    from hf_project.stats import DEFAULT_BOOTSTRAP_SAMPLES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--runs_dir", default="runs", help="Root of the run directories.")
    parser.add_argument("--dataset", default=None, help="Only runs on this dataset.")
    parser.add_argument("--model", default=None, help="Only these models (comma-separated run names).")
    parser.add_argument("--tag", default=None, help="Only runs with this --tag.")
    parser.add_argument("--out_dir", default=None,
                        help="Where the tables and plots go (default runs/_compare/<dataset>).")
    parser.add_argument("--allow_mixed_splits", action="store_true",
                        help="Put runs with different split hashes in one table (their numbers are not comparable; "
                             "such a data set gets no paired comparison).")
    parser.add_argument("--bootstrap_samples", type=int, default=DEFAULT_BOOTSTRAP_SAMPLES,
                        help="Bootstrap resamples of the test examples behind every 95%% interval.")
    parser.add_argument("--bootstrap_seed", type=int, default=DEFAULT_SEED,
                        help="Seed of the bootstrap resamples (the same seed gives the same intervals).")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.model.split(",")] if args.model else None
    selected = select_runs(args.runs_dir, args.dataset, models, args.tag)
    if not selected:
        raise UserError(f"no complete runs under {args.runs_dir} match: train one with scripts/finetune.py first")
    groups = group_runs(selected, args.allow_mixed_splits)
    rows = table_rows(groups)
    paired = paired_by_data_set(groups, rows, args.bootstrap_samples, args.bootstrap_seed, args.allow_mixed_splits)
    table = to_terminal(rows, paired)
    print(table)
    out_dir = args.out_dir or Path(args.runs_dir) / "_compare" / (args.dataset or "all")
    paths = write_outputs(rows, groups, out_dir, paired)
    print(f"tables and plots: {', '.join(str(p) for p in paths.values())}")
    return table


if __name__ == "__main__":
    sys.exit(cli.run(main))
