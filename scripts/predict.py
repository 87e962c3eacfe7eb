#!/usr/bin/env python
"""Predict with a saved model on texts, images or audio; writes a CSV and prints the first rows.

    python scripts/predict.py weights/fortunes/minilm inputs.csv [--text_column body]
    python scripts/predict.py weights/my_pairs/minilm pairs.csv --text_column premise --text_pair_column hypothesis
    python scripts/predict.py runs/digits/lstm path/to/images/ --output digits_predictions.csv
    python scripts/predict.py runs/tones/lstm/<run> a.wav b.flac

MODEL: weights/<dataset>/<model>, a run directory, runs/<dataset>/<model> (its newest complete run) or a hub id.
INPUTS: a CSV/JSON/JSONL file with a text column (or a .txt file, one text per line) for a text model; folders
(searched recursively) or files for an image or audio model. The CSV (--output, default predictions.csv in the
current directory, replaced if it exists) has input, predicted, score and one p_<class> column per class; for a
multi-label model, predicted is the set of labels joined by "|" and there is one p_<label> column per label; for a
regression, predicted is the value in the target's units.
"""

from __future__ import annotations

import argparse
import sys

from hf_project import cli


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="weights/<dataset>/<model>, a run directory, runs/<dataset>/<model> or a hub id")
    parser.add_argument("inputs", nargs="+", help="a CSV/JSON/JSONL/TXT file of texts, or image/audio files/folders")
    parser.add_argument("--output", default="predictions.csv", help="CSV to write (default: ./predictions.csv)")
    parser.add_argument("--text_column", default="text", help="column of the texts in a CSV/JSON input")
    parser.add_argument("--text_pair_column", default=None,
                        help="column of the second texts, for a model trained on sentence pairs")
    parser.add_argument("--batch_size", type=int, default=32, help="inputs per forward pass")
    parser.add_argument("--show", type=int, default=10, help="rows of the printed table")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list:
    from hf_project.errors import UserError
    from hf_project.inference import predict_files, prediction_table

    args = parse(argv)
    if args.batch_size < 1:
        raise UserError(f"--batch_size must be at least 1, got {args.batch_size}")
    predictions = predict_files(args.model, args.inputs, args.output, args.text_column, args.batch_size,
                                args.text_pair_column)
    print(prediction_table(predictions, limit=args.show))
    print(f"{len(predictions)} predictions written to {args.output}")
    return predictions


if __name__ == "__main__":
    sys.exit(cli.run(main))
