#!/usr/bin/env python
"""Build paper/ (LaTeX, tables, figures, bibliography) from the complete runs and compile paper/paper.pdf.

    python scripts/build_paper.py
    python scripts/build_paper.py --dataset fortunes --runs_dir runs --out_dir paper
    python scripts/build_paper.py --bootstrap_samples 10000 --bootstrap_seed 7     # the paired intervals' resamples
"""

from __future__ import annotations

import sys
from pathlib import Path

from hf_project import cli


def main(argv: list[str] | None = None) -> Path:
    from transformers import HfArgumentParser

    from hf_project.paper import PaperArguments, build_paper

    parser = HfArgumentParser(PaperArguments, description=__doc__.splitlines()[0], allow_abbrev=False)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    path = build_paper(args)
    print(f"paper: {path}")
    return path


if __name__ == "__main__":
    sys.exit(cli.run(main))
