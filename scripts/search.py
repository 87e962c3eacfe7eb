#!/usr/bin/env python
r"""Fair hyperparameter search (Optuna, validation only): the same trials and knobs for every model compared,
then the best trial of each model retrained as a normal run tagged search-best.

    python scripts/search.py --config configs/demo.yaml --model minilm,lstm --trials 8 \
        --search_space configs/search.yaml
    python scripts/search.py --model minilm,lstm --trials 8           # re-running the same command resumes
"""

from __future__ import annotations

import sys

from hf_project import cli


def main(argv: list[str] | None = None) -> dict:
    from hf_project.search import parse_search_args, run_search

    cfg, args = parse_search_args(argv)
    return run_search(cfg, args.search_space, args.trials, study=args.study)


if __name__ == "__main__":
    sys.exit(cli.run(main))
