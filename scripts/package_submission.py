#!/usr/bin/env python
"""Zip what the course asks for: scripts, notebooks, weights, requirements.txt, README and paper/paper.pdf.

    python scripts/package_submission.py                      # dist/submission.zip, with a size summary
    python scripts/package_submission.py --output /tmp/me.zip

Never the data: runs/ and data files (csv, parquet, audio, ...) are left out wherever they are.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hf_project import cli


def main(argv: list[str] | None = None) -> Path:
    from transformers import HfArgumentParser

    from hf_project.paper.package import PackageArguments, package_submission

    parser = HfArgumentParser(PackageArguments, description=__doc__.splitlines()[0], allow_abbrev=False)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    path, summary = package_submission(args)
    print(summary)
    return path


if __name__ == "__main__":
    sys.exit(cli.run(main))
