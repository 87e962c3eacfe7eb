#!/usr/bin/env python
"""Fine-tune one or more models on one seeded split, select on validation, test once.

    python scripts/finetune.py --config configs/demo.yaml
    accelerate launch scripts/finetune.py --model distilbert,lstm --dataset ag_news
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hf_project import cli  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    from hf_project.config import parse_args
    from hf_project.training import run_experiment

    return run_experiment(parse_args(argv))


if __name__ == "__main__":
    sys.exit(cli.run(main))
