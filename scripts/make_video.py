#!/usr/bin/env python
"""Draft the presentation video from the complete runs: slides, narration (espeak-ng), H.264 + AAC MP4.

    python scripts/make_video.py --author "Ada Lovelace" --student_number 1234567   # runs/ -> presentation/
    python scripts/make_video.py --notebook notebooks/my_walkthrough.ipynb          # your notebook's key cells
    python scripts/make_video.py --runs runs/fortunes --face webcam.mp4   # with the presenter in a corner
    python scripts/make_video.py --script presentation/presentation.narration.txt   # after editing the narration
    python scripts/make_video.py --bootstrap_samples 10000 --bootstrap_seed 7       # the paired intervals' resamples
"""

from __future__ import annotations

import sys
from pathlib import Path

from hf_project import cli


def main(argv: list[str] | None = None) -> Path:
    from transformers import HfArgumentParser

    from hf_project.video import VideoArguments, make_video

    parser = HfArgumentParser(VideoArguments, description=__doc__.splitlines()[0], allow_abbrev=False)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    path = make_video(args)
    print(f"video: {path}")
    print(f"narration: {path.with_suffix('.narration.txt')} (edit it, then render again with --script)")
    return path


if __name__ == "__main__":
    sys.exit(cli.run(main))
