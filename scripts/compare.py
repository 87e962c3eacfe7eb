#!/usr/bin/env python
"""Print a comparison table of the complete runs under runs/ (newest per model and seed).

    python scripts/compare.py --dataset fortunes
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hf_project import cli  # noqa: E402


def main(argv: list[str] | None = None) -> str:
    from hf_project.compare import format_table, latest_rows
    from hf_project.errors import UserError

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--runs_dir", default="runs", help="Root of the run directories.")
    parser.add_argument("--dataset", default=None, help="Only runs on this dataset.")
    args = parser.parse_args(argv)
    rows = latest_rows(args.runs_dir, args.dataset)
    if not rows:
        raise UserError(f"no complete runs under {args.runs_dir}: train one with scripts/finetune.py first")
    table = format_table(rows)
    print(table)
    return table


if __name__ == "__main__":
    sys.exit(cli.run(main))
