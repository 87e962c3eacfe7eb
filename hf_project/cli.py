"""What every entry script shares: logging on the main process only, and one-line errors."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any


def setup_logging() -> None:
    # RANK is set by accelerate/torchrun; only rank 0 talks, the others keep warnings and errors.
    is_main = os.environ.get("RANK", "0") == "0"
    logging.basicConfig(
        level=logging.INFO if is_main else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    import datasets
    import transformers

    transformers.logging.set_verbosity_warning()
    datasets.logging.set_verbosity_warning()


def run(main: Callable[[], Any]) -> int:
    """Run `main`; bad input becomes `error: ...` on stderr and exit status 1, not a traceback."""
    from hf_project.errors import UserError

    setup_logging()
    try:
        main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into `head` or a pager that closed early: nothing went wrong on our side.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0
