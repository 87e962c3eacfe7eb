"""How the image augmentation defaults (config.AUGMENTATION_DEFAULTS) were chosen: each model family trained with
no augmentation, a horizontal flip, and a random resized crop + flip, on the builtin image sets, compared on
VALIDATION only (the test splits play no part in the choice).

    .venv/bin/python benchmarks/choose_augmentation.py            # about 1 h on 2 CPU cores
    .venv/bin/python benchmarks/choose_augmentation.py --quick    # minutes: fewer images, one epoch

Writes benchmarks/results/augmentation.md (and prints it).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETTINGS = {"none": ["--no_random_resized_crop", "--no_horizontal_flip"],
            "flip": ["--no_random_resized_crop", "--horizontal_flip"],
            "crop+flip": ["--random_resized_crop", "--horizontal_flip"]}
# What each family is trained with (the demo's settings): the pretrained CNN at 112 px, the row LSTM on 28 rows.
FAMILIES = {
    "mobilenet_v2": ["--image_size", "112", "--learning_rate", "5e-4", "--num_train_epochs", "3"],
    "lstm": ["--lstm_learning_rate", "2e-3", "--num_train_epochs", "8"],
}
DATASETS = {
    "fashion_mnist": ["--max_train_samples", "3000", "--max_eval_samples", "1000"],
    "digits": [],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="400 training images, one epoch: checks it runs")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "augmentation.md"))
    args = parser.parse_args()
    from hf_project.cli import setup_logging
    from hf_project.config import parse_args
    from hf_project.training import run_experiment

    setup_logging()
    logging.getLogger("hf_project").setLevel(logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for dataset, data_flags in DATASETS.items():
            for model, model_flags in FAMILIES.items():
                for setting, aug_flags in SETTINGS.items():
                    flags = ["--dataset", dataset, "--model", model, *data_flags, *model_flags, *aug_flags,
                             "--runs_dir", f"{tmp}/runs", "--weights_dir", f"{tmp}/weights", "--no_isolate_runs"]
                    if args.quick:
                        flags += ["--max_train_samples", "400", "--max_eval_samples", "200", "--num_train_epochs", "1"]
                    start = time.time()
                    metrics = run_experiment(parse_args(flags))[model]
                    val = metrics["validation"]
                    rows.append({"dataset": dataset, "model": model, "augmentation": setting,
                                 "val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"],
                                 "minutes": (time.time() - start) / 60})
                    print(json.dumps(rows[-1]), flush=True)
    lines = ["| dataset | model | augmentation | validation accuracy | validation macro-F1 | minutes |",
             "|---|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['model']} | {r['augmentation']} | {r['val_accuracy']:.4f} | "
                     f"{r['val_macro_f1']:.4f} | {r['minutes']:.1f} |")
    table = "\n".join(lines)
    header = ("Image augmentation per model family, chosen on validation (benchmarks/choose_augmentation.py"
              f"{' --quick' if args.quick else ''}).\n\n")
    Path(args.out).write_text(header + table + "\n")
    print(table)


if __name__ == "__main__":
    main()
