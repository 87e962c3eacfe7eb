#!/usr/bin/env python
"""Fine-tune one or more models on one seeded split, select on validation, test once.

    python scripts/finetune.py --config configs/demo.yaml
    accelerate launch scripts/finetune.py --model distilbert,lstm --dataset ag_news
    accelerate launch --multi_gpu --num_processes 2 scripts/finetune.py --model distilbert
    python scripts/finetune.py --resume runs/<dataset>/<model>/<run>      # or --resume last
"""

from __future__ import annotations

import sys

from hf_project import cli


def main(argv: list[str] | None = None) -> dict:
    from hf_project.config import parse_args_with
    from hf_project.resume import ResumeArguments, check_resume_flags, resume_run
    from hf_project.training import run_experiment

    argv = list(sys.argv[1:] if argv is None else argv)
    cfg, resume = parse_args_with(argv, ResumeArguments)
    if resume.resume is not None:
        check_resume_flags(argv)
        return resume_run(resume.resume, cfg.train.runs_dir)
    return run_experiment(cfg)


if __name__ == "__main__":
    sys.exit(cli.run(main))
