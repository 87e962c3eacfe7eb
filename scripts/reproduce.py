#!/usr/bin/env python
"""Re-train a complete run from its saved config and split, and check that its numbers come out again.

    python scripts/reproduce.py runs/fortunes/lstm/20250101-120000-s2023
    python scripts/reproduce.py runs/fortunes/minilm/20250101-120000-s2023 --tolerance 0.02

Exit status 1 with a one-line message when a metric or the loss curve differs beyond the tolerance.
"""

from __future__ import annotations

import argparse
import sys

from hf_project import cli


def main(argv: list[str] | None = None) -> dict:
    from hf_project.errors import UserError
    from hf_project.reproduce import DEFAULT_TOLERANCE, reproduce

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("run_dir", help="A complete run: runs/<dataset>/<model>/<timestamp>-s<seed>.")
    parser.add_argument("--tolerance", type=float, default=None,
                        help="Largest absolute difference allowed per quantity (default: 0 with the recorded package "
                        f"versions and device on CPU, else {DEFAULT_TOLERANCE}).")
    parser.add_argument("--out_dir", default=None,
                        help="Root of the reproduced run (default <runs root>/_reproduce, which compare ignores).")
    args = parser.parse_args(argv)
    result = reproduce(args.run_dir, args.tolerance, args.out_dir)
    print(result.table())
    if not result.passed:
        raise UserError(result.failure_message())
    return result.to_dict()


if __name__ == "__main__":
    sys.exit(cli.run(main))
