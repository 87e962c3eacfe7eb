"""How cost grows with the work: time per row and peak memory of every pipeline phase against the data set's size.

    .venv/bin/python benchmarks/bench_scaling.py --tiny             # ~1.5 minutes on 2 cores: checks that it runs
    .venv/bin/python benchmarks/bench_scaling.py --parts micro      # the non-model steps alone: ~2.5 minutes
    .venv/bin/python benchmarks/bench_scaling.py                    # full size (BENCHMARKS.md, "How cost grows")
    .venv/bin/python benchmarks/bench_scaling.py --combine a.json b.json --output c.json   # merge earlier runs

The full run (1k, 10k and 100k rows; lstm and minilm on text, lstm on images; the non-model steps; compare over
2, 8 and 32 runs) takes about 12 minutes on a quiet 2-core machine: minilm ~3 minutes (20 training steps, 1000
evaluation rows and 500 inference rows per size, and tokenising 100k rows), the images ~4 minutes (datasets'
imagefolder lists 100k files for ~90 s), the LSTM ~1.5 minutes, the non-model steps ~2.5 minutes. Peak RSS per child
at 1k-10k rows: ~0.6 GB (LSTM on images), ~0.8 GB (LSTM on text), ~1.6 GB (minilm). --threads sets each child's
torch threads (default: torch's, all cores).

Data. Text: N rows of the builtin fortunes, taken round-robin over its 43 categories (every class present at every
N) and made distinct by a row-index word (`... r12345`), so that nothing can be de-duplicated or served from a cache;
written to a CSV file, which the toolkit reads as a user's file. Images: N 8x8 greyscale digits (scikit-learn's
1797, cycled, each with its own seeded pixel noise), written as an imagefolder of PNG files. Generating the data is
not timed.

Pipeline (one child process per model and size, so its peak RSS is its own; a fresh tokenisation cache each):
  data       training.prepare_experiment: load the file, detect the task, label checks, fingerprint, the seeded
             stratified split, labels encoded, class balance
  stage      training.prepare_inputs + the stage's input_facts: minilm's tokenisation of every split (cache miss),
             the LSTM's vocabulary learnt from train then tokenisation; images: every file verified, the LSTM's
             pixel statistics
  model      new_model + build_trainer (does not depend on N)
  train      --train_steps optimiser steps of --batch_size (no evaluation, no checkpoint): samples/s is comparable
             across N because the work per step is the same
  evaluate   Trainer.evaluate on min(validation rows, --eval_rows)
  save       Trainer.save_model (does not depend on N)
  inference  hf_project.inference.Predictor.load, then probabilities() on --infer_rows test inputs
  write      results.write_run_inputs (config.yaml, split.json with every row index, class_balance.csv), then
             scored_test and write_test_files (predictions_test.csv, report, confusion matrix, figures) for all
             test rows, from synthetic logits (predicting 20k test rows with minilm would measure the model again)

Micro (one child per size): the same non-model steps one function at a time (hf_project.data's loaders, label
checks, splits, class balance, tokenisation and its cache key, prediction writing) plus compare over synthetic run
directories (scripts/compare.py's calls: select, group, tables, paired bootstrap, write), and compare against the
number of runs at one size. A step whose time per row grows with N is what this looks for: the growth exponent
log(t2/t1)/log(N2/N1) is 1 for a linear step, 2 for a quadratic one (below 1 where a fixed cost dominates).

Writes benchmarks/results/<date>-scaling.json (every number), a log-log figure <date>-scaling.png (time per row of
each phase and step against N, peak RSS against N), and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_train  # noqa: E402
from bench_train import peak_rss_mb, run_child  # noqa: E402

from hf_project.config import DEFAULT_SEED  # noqa: E402

SEED = DEFAULT_SEED
SUPERLINEAR = 1.3  # growth exponent above which a step is flagged (1 = linear)
MIN_SECONDS = 0.2  # below this at the largest size a step is too short to judge its growth
REPEATS, REPEAT_BELOW = 3, 2.0  # micro steps shorter than REPEAT_BELOW seconds: the fastest of REPEATS runs

FULL = {"sizes": [1000, 10000, 100000], "image_sizes": [1000, 10000, 100000], "models": ["lstm", "minilm"],
        "image_models": ["lstm"], "train_steps": 20, "eval_rows": 1000, "infer_rows": 500, "bootstrap": 1000,
        "compare_runs": [2, 8, 32]}
TINY = {"sizes": [300, 600], "image_sizes": [100, 200], "models": ["lstm", "minilm"], "image_models": ["lstm"],
        "train_steps": 2, "eval_rows": 32, "infer_rows": 32, "bootstrap": 50, "compare_runs": [2, 4]}


# ----------------------------------------------------------------------------------------------------------- data


def fortune_rows(n: int) -> Iterator[tuple[str, str]]:
    """(text, category) of n distinct rows: the fortunes round-robin over their categories, each with its row index."""
    from hf_project.data.builtin import load_builtin

    train = load_builtin("fortunes")["train"]
    names = train.features["label"].names
    texts = list(train["text"])
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(train["label"]):
        by_class.setdefault(label, []).append(i)
    classes = sorted(by_class)
    for i in range(n):
        c = classes[i % len(classes)]
        members = by_class[c]
        yield f"{texts[members[(i // len(classes)) % len(members)]]} r{i}", names[c]


def make_text_csv(path: Path, n: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(fortune_rows(n))
    return path


def make_image_folder(root: Path, n: int) -> Path:
    """n distinct 8x8 greyscale PNGs in one folder per digit: scikit-learn's digits cycled, each with its own noise."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(SEED)
    for d in range(10):
        (root / str(d)).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        k = i % len(digits.images)
        pixels = digits.images[k] * 255 / 16 + rng.integers(-12, 13, size=(8, 8))
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(root / str(digits.target[k]) / f"{i:06d}.png")
    return root


# ----------------------------------------------------------------------------------------------------------- child


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Timer:
    """Named steps, each with its seconds, the rows it handled, the RSS after it and the process's peak so far."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def __call__(self, name: str, rows: int) -> Iterator[None]:
        started = time.perf_counter()
        yield
        seconds = time.perf_counter() - started
        self.rows.append({"step": name, "rows": rows, "seconds": round(seconds, 4),
                          "us_per_row": round(1e6 * seconds / max(rows, 1), 3), "rss_mb": round(rss_mb(), 1),
                          "peak_rss_mb": round(peak_rss_mb(), 1)})
        print(f"[{name}] {seconds:.3f} s for {rows} rows", file=sys.stderr, flush=True)

    def run(self, name: str, rows: int, fn: Callable[[], Any], repeat: bool = True) -> Any:
        """fn() timed; a `repeat`able (idempotent) step that takes under REPEAT_BELOW seconds is run up to REPEATS
        times and its fastest time kept, so that another process's burst does not pass for a slow step."""
        with self(name, rows):
            result = fn()
        first = self.rows[-1]
        for _ in range(REPEATS - 1 if repeat and first["seconds"] < REPEAT_BELOW else 0):
            with self(name, rows):
                fn()
            again = self.rows.pop()
            if again["seconds"] < first["seconds"]:
                first.update(seconds=again["seconds"], us_per_row=again["us_per_row"])
        return result


def base_values(job: dict[str, Any]) -> dict[str, Any]:
    work = Path(job["workdir"])
    return {"dataset": job["data"], "model": job.get("model", "lstm"), "seed": SEED,
            "max_steps": job.get("train_steps", -1), "per_device_train_batch_size": job.get("batch_size", 32),
            "per_device_eval_batch_size": 64, "early_stopping_patience": 0, "logging_steps": 10**6,
            "cache_dir": str(work / "cache"), "runs_dir": str(work / "runs"), "weights_dir": str(work / "weights"),
            "mixed_precision": "no"}


def synthetic_logits(refs: Any, num_labels: int, seed: int, skill: float = 0.6) -> Any:
    """Test logits of a model that is right about `skill` of the time (noise elsewhere): predictions to write."""
    import numpy as np

    refs = np.asarray(refs)
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.0, (len(refs), num_labels)).astype(np.float32)
    right = rng.random(len(refs)) < skill
    logits[np.flatnonzero(right), refs[right]] += 3.0
    return logits


def validation_entry(metrics: dict[str, Any], metric: str) -> dict[str, Any]:
    """metrics.json's `validation` entry of a synthetic run: its test scores, as if validation had scored the same."""
    return {"best_step": 10, "best_epoch": 1.0, "selected_by": f"validation {metric}", "loss": 1.0,
            **{k: v for k, v in metrics.items() if isinstance(v, float)}}


def inference_inputs(data: Any, rows: int) -> list[Any]:
    """Raw test inputs as a user hands them to the Predictor: texts, or image files."""
    from datasets import Image

    ds = data.splits["test"].select(range(min(rows, len(data.splits["test"]))))
    if data.modality == "text":
        return list(ds["text"])
    ds = ds.cast_column("image", Image(decode=False))
    return [x["path"] or x for x in ds["image"]]


def run_pipeline(job: dict[str, Any], out: dict[str, Any]) -> None:
    from transformers import set_seed

    from hf_project import results
    from hf_project.config import config_from_dict
    from hf_project.inference import Predictor
    from hf_project.training import ModelInputs, build_trainer, new_model, prepare_experiment, prepare_inputs

    t = Timer()
    work = Path(job["workdir"])
    n = job["n"]
    with t("data", n):
        experiment = prepare_experiment(config_from_dict(base_values(job)))
    data = experiment.data
    name, spec = experiment.models[0]
    cfg = experiment.cfg.for_run(name, experiment.cfg.train.seed)  # as run_experiment hands it to each run
    sizes = {part: len(ds) for part, ds in data.splits.items()}
    with t("stage", n):
        inputs = prepare_inputs(cfg, spec, data, work / "ckpt")
        inputs.stage.input_facts(inputs.prepared, cfg)
    with t("model", 1):
        inputs = ModelInputs(inputs.stage, inputs.processor, bench_train.no_periodic_eval(inputs.args), inputs.prepared)
        set_seed(cfg.train.seed)
        trainer = build_trainer(cfg, data, inputs, model=new_model(cfg, spec, data, inputs))
    steps, batch = job["train_steps"], job["batch_size"]
    with t("train", steps * batch):
        trainer.train()
    evaluated = inputs.prepared["validation"].select(range(min(job["eval_rows"], sizes["validation"])))
    with t("evaluate", len(evaluated)):
        trainer.evaluate(eval_dataset=evaluated)
    model_dir = work / "model"
    with t("save", 1):
        trainer.save_model(str(model_dir))
    texts = inference_inputs(data, job["infer_rows"])
    with t("inference load", 1):
        predictor = Predictor.load(model_dir)
    with t("inference", len(texts)):
        predictor.probabilities(texts, batch_size=64, progress=False)
    run_dir = work / "runs" / "run"
    with t("write run inputs", n):
        results.write_run_inputs(run_dir, cfg, data)
    logits = synthetic_logits(data.references("test"), data.num_labels, SEED)
    with t("write test results", sizes["test"]):
        _, refs, outputs, report = results.scored_test(cfg, spec, data, trainer.task, logits, {}, 1.0)
        results.write_test_files(run_dir, data, trainer.task, refs, outputs, report, title="scaling")
    out.update(sizes=sizes, phases=t.rows, modality=data.modality, num_labels=data.num_labels)


def fake_run(runs_dir: Path, cfg: Any, data: Any, model: str, seed: int, skill: float) -> None:
    """A complete run directory of the files compare reads, with synthetic test predictions (no model, no figures)."""
    from hf_project import results, runs
    from hf_project.models.registry import resolve
    from hf_project.tasks import SingleLabel

    run_dir = runs_dir / data.name / model / f"20260101-000000-s{seed}"
    task = SingleLabel()
    logits = synthetic_logits(data.references("test"), data.num_labels, seed * 1000 + len(model), skill)
    spec = dataclasses.replace(resolve("lstm"), name=model)
    metrics, refs, outputs, report = results.scored_test(cfg, spec, data, task, logits, {}, 1.0)
    metrics["validation"] = validation_entry(metrics["test"], cfg.train.metric_for_best_model)
    results.write_run_inputs(run_dir, cfg.for_run("lstm", seed), data)
    runs.write_csv(run_dir / runs.PREDICTIONS_FILE, results.prediction_rows(data, task, outputs, refs))
    runs.write_csv(run_dir / runs.REPORT_FILE, report["per_class"])
    runs.write_json(run_dir / runs.CONFUSION_FILE, task.confusion(report, data.label_names))
    runs.write_json(run_dir / runs.METRICS_FILE, metrics)
    runs.write_json(run_dir / runs.LOG_HISTORY_FILE, [{"step": s, "eval_loss": 2.0 / s} for s in (1, 2, 3)])
    manifest = {"model": {"name": model, "checkpoint": None, "from_scratch": True}, "seed": seed,
                "dataset": {"name": data.name, "modality": data.modality}, "split_hash": data.split["hash"],
                "label_names": data.label_names, "parameters": {"total": 1_000_000, "trainable": 1_000_000},
                "model_size_mb": 4.0, "train_runtime_s": 10.0, "train_samples_per_second": 100.0}
    runs.write_json(run_dir / runs.MANIFEST_FILE, manifest)
    runs.set_status(run_dir, runs.STATUS_COMPLETE)


def time_compare(t: Timer, runs_dir: Path, dataset: str, rows: int, samples: int, prefix: str = "compare") -> None:
    """scripts/compare.py's calls, one step each."""
    from hf_project.compare import to_terminal, write_outputs
    from hf_project.report import group_runs, paired_by_data_set, select_runs, table_rows

    selected = t.run(f"{prefix}: select_runs", rows, lambda: select_runs(runs_dir, dataset))
    with t(f"{prefix}: group_runs + table_rows", rows):
        groups = group_runs(selected)
        table = table_rows(groups)
    paired = t.run(f"{prefix}: paired bootstrap", rows, lambda: paired_by_data_set(groups, table, samples, SEED))
    with t(f"{prefix}: tables + figures", rows):
        to_terminal(table, paired)
        write_outputs(table, groups, runs_dir.parent / "compare", paired)


def run_micro(job: dict[str, Any], out: dict[str, Any]) -> None:
    """The non-model steps one at a time (hf_project's own functions, in the order prepare_data calls them)."""
    from datasets import ClassLabel
    from transformers import AutoTokenizer

    from hf_project import data as data_module
    from hf_project import results, runs
    from hf_project.config import config_from_dict, for_task
    from hf_project.data import labels as label_utils
    from hf_project.data.sources import load_raw
    from hf_project.data.splits import limit_eval, make_split, split_hash
    from hf_project.modalities import text as text_stage
    from hf_project.models.registry import resolve
    from hf_project.tasks import SingleLabel
    from hf_project.training import length_order

    t = Timer()
    n = job["n"]
    work = Path(job["workdir"])
    cfg = config_from_dict(base_values(job))
    args = cfg.data
    raw = t.run("load csv (load_raw)", n, lambda: load_raw(args.dataset))
    train = raw["train"]
    task = t.run("task detection + label value checks", n, lambda: data_module._task_of(raw, args))
    labels = t.run("labels read", n, lambda: data_module._labels(task, train, args, "train"))
    fp = t.run("fingerprint", n, lambda: data_module.fingerprint(raw, "text", "label"))
    strata = t.run("stratification keys", n, lambda: label_utils.stratification_keys(task, labels))
    split = t.run("split: stratified", n, lambda: make_split({"train": n}, strata, SEED, 0.2, 0.1, fp))
    t.run("split: plain", n, lambda: make_split({"train": n}, None, SEED, 0.2, 0.1, fp))
    names = t.run("label names", n, lambda: label_utils.label_names_from(train.features["label"], labels))
    # multi-label and regression versions of the same rows: every third row carries the next class too
    sets = [sorted({labels[i], names[(names.index(labels[i]) + 1) % len(names)]}) if i % 3 == 0 else [labels[i]]
            for i in range(n)]
    ml_keys = label_utils.stratification_keys("multi_label", sets)
    ml_split = t.run("split: multi-label iterative", n, lambda: make_split({"train": n}, ml_keys, SEED, 0.2, 0.1, fp))
    targets = [float(len(x)) for x in train["text"]]
    t.run("split: regression quintiles", n, lambda: make_split(
        {"train": n}, label_utils.stratification_keys("regression", targets), SEED, 0.2, 0.1, fp))
    t.run("limit_eval (max_eval_samples n/10)", n, lambda: limit_eval(split, n // 10, SEED))
    feature = train.features["label"]
    parts = ("train", "validation", "test")
    encoded = t.run("encode labels", n, lambda: {p: label_utils.encode([labels[i] for i in split[p]["indices"]],
                                                                        feature, names, p) for p in parts})
    t.run("split datasets (select, text, label)", n, lambda: [
        text_stage.split_inputs(train.select(split[p]["indices"]), "text", p).add_column("label", encoded[p])
        .cast_column("label", ClassLabel(names=names)) for p in parts])
    t.run("label checks + class balance", n, lambda: data_module._balance("single_label", encoded, names, "label"))
    ml_names = t.run("multi-label: label names", n, lambda: label_utils.multi_label_names(sets))
    ml = t.run("multi-label: encode", n, lambda: {p: label_utils.encode_sets([sets[i] for i in ml_split[p]["indices"]],
                                                                             ml_names, p) for p in parts})
    t.run("multi-label: balance", n, lambda: label_utils.multi_label_balance(ml, ml_names))
    data = t.run("prepare_data (all of the above, once)", n, lambda: data_module.prepare_data(args, SEED))
    cfg = for_task(cfg, data.task)
    t.run("class weights", len(data.splits["train"]),
          lambda: SingleLabel().loss_weights(data.references("train"), data.num_labels))
    tokenizer = AutoTokenizer.from_pretrained(resolve("minilm").checkpoint)
    t.run("cache key: split hash", n, lambda: split_hash(data.split))
    t.run("cache key: tokenizer hash", n, lambda: text_stage.tokenizer_hash(tokenizer))
    t.run("LSTM vocabulary", len(data.splits["train"]),
          lambda: text_stage.load_processor(resolve("lstm"), data, cfg))
    tokenise = lambda: text_stage.tokenize(data.splits, tokenizer, 128, data.split["hash"], cfg.data.cache_dir)  # noqa: E731
    prepared = t.run("tokenise minilm (cache miss)", n, tokenise, repeat=False)
    t.run("tokenise minilm (cache hit)", n, tokenise)
    t.run("input_facts (token lengths)", n, lambda: text_stage.input_facts(prepared, cfg))
    t.run("evaluation order (length_order)", len(prepared["validation"]),
          lambda: length_order(prepared["validation"]))
    n_test = len(data.splits["test"])
    task_obj = SingleLabel()
    logits = synthetic_logits(data.references("test"), data.num_labels, SEED)
    spec = resolve("lstm")
    scored = t.run("scored_test", n_test, lambda: results.scored_test(cfg, spec, data, task_obj, logits, {}, 1.0))
    _, refs, outputs, report = scored
    rows = t.run("prediction_rows", n_test, lambda: results.prediction_rows(data, task_obj, outputs, refs))
    run_dir = work / "run"
    t.run("write predictions_test.csv", n_test, lambda: runs.write_csv(run_dir / runs.PREDICTIONS_FILE, rows))
    t.run("write_run_inputs (split.json ...)", n, lambda: results.write_run_inputs(run_dir, cfg, data))
    t.run("write_test_files (all, with figures)", n_test,
          lambda: results.write_test_files(run_dir, data, task_obj, refs, outputs, report, title="scaling"))
    runs_dir = work / "compare-runs" / "runs"
    for g in range(2):  # two models, three seeds each: the paired comparison over seeds
        for seed in (1, 2, 3):
            fake_run(runs_dir, cfg, data, f"model{g}", seed, 0.55 + 0.05 * g)
    time_compare(t, runs_dir, data.name, n_test, job["bootstrap"])
    out.update(sizes={p: len(ds) for p, ds in data.splits.items()}, steps=t.rows)


def run_compare_runs(job: dict[str, Any], out: dict[str, Any]) -> None:
    """compare against the number of runs (half as many models, two seeds each) on one test set."""
    from hf_project.config import config_from_dict, for_task
    from hf_project.data import prepare_data

    cfg = config_from_dict(base_values(job))
    data = prepare_data(cfg.data, SEED)
    cfg = for_task(cfg, data.task)
    points = []
    for r in job["compare_runs"]:
        t = Timer()
        runs_dir = Path(job["workdir"]) / f"runs-{r}" / "runs"
        for i in range(r):
            fake_run(runs_dir, cfg, data, f"model{i // 2}", 1 + i % 2, 0.5 + 0.3 * i / r)
        time_compare(t, runs_dir, data.name, r, job["bootstrap"])
        points.append({"runs": r, "steps": t.rows})
    out.update(test_rows=len(data.splits["test"]), points=points)


def child(job: dict[str, Any]) -> None:
    import torch

    if job.get("threads"):
        torch.set_num_threads(job["threads"])
    out: dict[str, Any] = {k: job[k] for k in ("kind", "case", "n") if k in job}
    {"pipeline": run_pipeline, "micro": run_micro, "compare_runs": run_compare_runs}[job["kind"]](job, out)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print("RESULT " + json.dumps(out), flush=True)


# ---------------------------------------------------------------------------------------------------------- parent


def run_job(job: dict[str, Any], workdir: Path, log: Any) -> dict[str, Any]:
    label = f"{job['kind']} {job.get('case', '')} n={job.get('n', '')}".replace("  ", " ")
    job = {**job, "workdir": str(workdir / label.replace(" ", "-").replace("=", ""))}
    result = run_child(__file__, job, label, log, env={"HF_DATASETS_CACHE": str(Path(job["workdir"]) / "hf-datasets"),
                                                       "HF_PROJECT_CACHE": str(workdir / "cache")})
    print(f"[bench] {label}: {result['wall_s']} s, peak RSS {result['peak_rss_mb']} MB", file=sys.stderr, flush=True)
    return result


def exponent(n1: float, t1: float, n2: float, t2: float) -> float | None:
    """How time grows with the rows between two sizes: 1 linear, 2 quadratic."""
    if t1 <= 0 or t2 <= 0 or n1 == n2:
        return None
    return round(math.log(t2 / t1) / math.log(n2 / n1), 2)


def growth(points: list[tuple[int, float]]) -> dict[str, Any]:
    """Exponents between consecutive sizes, and whether the last one looks faster than linear."""
    points = sorted(points)
    steps = [exponent(*a, *b) for a, b in zip(points, points[1:], strict=False)]
    last = steps[-1] if steps else None
    flagged = last is not None and last > SUPERLINEAR and points[-1][1] >= MIN_SECONDS
    return {"exponents": steps, "superlinear": flagged}


def analyse(pipeline: list[dict[str, Any]], micro: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (case, phase) and per micro step: seconds, time per row and growth over the sizes."""
    series: dict[tuple[str, str], list[tuple[int, float, float]]] = {}
    for r in pipeline:
        for p in r["phases"]:
            series.setdefault((r["case"], p["step"]), []).append((r["n"], p["seconds"], p["us_per_row"]))
    for r in micro:
        for s in r["steps"]:
            series.setdefault(("micro", s["step"]), []).append((r["n"], s["seconds"], s["us_per_row"]))
    rows = []
    for (case, step), points in series.items():
        points.sort()
        rows.append({"case": case, "step": step, "n": [p[0] for p in points], "seconds": [p[1] for p in points],
                     "us_per_row": [p[2] for p in points], **growth([(p[0], p[1]) for p in points])})
    return rows


def _fmt(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def pipeline_table(pipeline: list[dict[str, Any]]) -> str:
    lines = ["| case | rows | data s | stage s | train samples/s | eval samples/s | inference samples/s | "
             "write run s | peak RSS MB |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in pipeline:
        p = {x["step"]: x for x in r["phases"]}
        rate = {k: p[k]["rows"] / p[k]["seconds"] if p[k]["seconds"] else None for k in ("train", "evaluate",
                                                                                         "inference")}
        write = p["write run inputs"]["seconds"] + p["write test results"]["seconds"]
        lines.append(f"| {r['case']} | {r['n']:,} | {_fmt(p['data']['seconds'], 2)} | {_fmt(p['stage']['seconds'], 2)} "
                     f"| {_fmt(rate['train'])} | {_fmt(rate['evaluate'])} | {_fmt(rate['inference'])} "
                     f"| {_fmt(write, 2)} | {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def growth_table(rows: list[dict[str, Any]], sizes: list[int]) -> str:
    head = " | ".join(f"µs/row at {n:,}" for n in sizes)
    lines = [f"| case | step | {head} | s at {sizes[-1]:,} | growth exponents |",
             "|---|---|" + "---:|" * (len(sizes) + 2)]
    for r in rows:
        per = dict(zip(r["n"], r["us_per_row"], strict=True))
        secs = dict(zip(r["n"], r["seconds"], strict=True))
        flag = " **superlinear**" if r["superlinear"] else ""
        exps = ", ".join("-" if e is None else f"{e:.2f}" for e in r["exponents"])
        lines.append(f"| {r['case']} | {r['step']} | " + " | ".join(_fmt(per.get(n), 2) for n in sizes)
                     + f" | {_fmt(secs.get(sizes[-1]), 3)} | {exps}{flag} |")
    return "\n".join(lines)


def compare_runs_table(result: dict[str, Any]) -> str:
    steps = [s["step"] for s in result["points"][0]["steps"]]
    lines = [f"compare on {result['test_rows']:,} test rows against the number of runs (seconds):", "",
             "| runs | " + " | ".join(s.removeprefix("compare: ") for s in steps) + " |",
             "|---:|" + "---:|" * len(steps)]
    for p in result["points"]:
        lines.append(f"| {p['runs']} | " + " | ".join(f"{s['seconds']:.3f}" for s in p["steps"]) + " |")
    return "\n".join(lines)


DATA_PHASES = ("data", "stage", "write run inputs", "write test results")  # work that grows with N
RATE_PHASES = ("train", "evaluate", "inference")  # a fixed amount of work: samples/s should not depend on N
PLOTTED_STEPS = 12  # the slowest non-model steps at the largest size, drawn (all are in the JSON and the table)


def plot(pipeline: list[dict[str, Any]], micro: list[dict[str, Any]], path: Path) -> None:
    """2x2 log-log panels against N: the phases that grow with N (µs per data-set row), the fixed-work phases
    (samples/s), the slowest non-model steps (µs per row), peak RSS. Flat lines in the first three are linear cost."""
    import logging

    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # no line per missing math font
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(14, 10))
    styles, markers = ["-", "--", ":", "-."], ["o", "s", "^", "D"]  # one of each per case; a colour per phase
    colours = plt.get_cmap("tab10")
    cases = list(dict.fromkeys(r["case"] for r in pipeline))

    def series(case: str, phase: str, value: Callable[[dict[str, Any]], float]) -> list[tuple[int, float]]:
        return sorted((r["n"], value(p)) for r in pipeline if r["case"] == case for p in r["phases"]
                      if p["step"] == phase and p["seconds"] > 0)

    for ax, phases, value, label, title in (
            (axes[0, 0], DATA_PHASES, lambda p: 1e6 * p["seconds"] / p["rows"], "µs per row",
             "phases that grow with N: time per row"),
            (axes[0, 1], RATE_PHASES, lambda p: p["rows"] / p["seconds"], "samples/s",
             "fixed work (train steps, eval and inference rows): speed")):
        for c, case in enumerate(cases):
            for k, phase in enumerate(phases):
                pts = series(case, phase, value)
                if pts:
                    ax.plot(*zip(*pts, strict=True), styles[c % len(styles)], marker=markers[c % len(markers)],
                            color=colours(k), label=f"{case}: {phase}")
        ax.set(xscale="log", yscale="log", xlabel="data set rows N", ylabel=label, title=title)
        if cases:
            ax.legend(fontsize=7, ncol=2)
    ax = axes[1, 0]
    largest = max((r["n"] for r in micro), default=0)
    slowest = sorted(((s["seconds"], s["step"]) for r in micro if r["n"] == largest for s in r["steps"]),
                     reverse=True)[:PLOTTED_STEPS]
    colours20 = plt.get_cmap("tab20")
    for k, (_, step) in enumerate(slowest):
        pts = sorted((r["n"], s["us_per_row"]) for r in micro for s in r["steps"] if s["step"] == step)
        ax.plot(*zip(*pts, strict=True), marker="o", color=colours20(k % 20), label=step)
    ax.set(xscale="log", yscale="log", xlabel="data set rows N", ylabel="µs per row",
           title=f"the {PLOTTED_STEPS} slowest non-model steps: time per row")
    if slowest:
        ax.legend(fontsize=7, ncol=2)
    ax = axes[1, 1]
    for c, case in enumerate(cases):
        pts = sorted((r["n"], r["peak_rss_mb"]) for r in pipeline if r["case"] == case)
        ax.plot(*zip(*pts, strict=True), styles[c % len(styles)], marker=markers[c % len(markers)], label=case)
    if micro:
        ax.plot(*zip(*sorted((r["n"], r["peak_rss_mb"]) for r in micro), strict=True), marker=".", color="grey",
                label="non-model steps")
    ax.set(xscale="log", yscale="log", xlabel="data set rows N", ylabel="peak RSS MB",
           title="peak memory of the process")
    if cases or micro:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def jobs_for(opts: argparse.Namespace, size: dict[str, Any], workdir: Path) -> list[dict[str, Any]]:
    common = {"train_steps": opts.train_steps or size["train_steps"], "batch_size": opts.batch_size,
              "eval_rows": opts.eval_rows or size["eval_rows"], "infer_rows": opts.infer_rows or size["infer_rows"],
              "bootstrap": opts.bootstrap_samples or size["bootstrap"], "threads": opts.threads}
    jobs: list[dict[str, Any]] = []
    text_model = {}
    if opts.tiny and "minilm" in opts.models:  # a 2-layer BERT with MiniLM's vocabulary

        text_model["minilm"] = str(bench_train.save_text_model(workdir / "tiny-minilm"))
    for n in opts.sizes if {"pipeline", "micro"} & set(opts.parts) else []:
        data = str(make_text_csv(workdir / "data" / f"fortunes-{n}.csv", n))
        if "pipeline" in opts.parts:
            jobs += [{**common, "kind": "pipeline", "case": f"{m} text", "model": text_model.get(m, m), "n": n,
                      "data": data} for m in opts.models]
        if "micro" in opts.parts:
            jobs.append({**common, "kind": "micro", "n": n, "data": data})
    if "micro" in opts.parts and opts.compare_runs:
        n = opts.sizes[len(opts.sizes) // 2]
        jobs.append({**common, "kind": "compare_runs", "n": n, "compare_runs": opts.compare_runs,
                     "data": str(workdir / "data" / f"fortunes-{n}.csv")})
    if "pipeline" in opts.parts:
        for n in opts.image_sizes:
            folder = str(make_image_folder(workdir / "data" / f"digits-{n}", n))
            jobs += [{**common, "kind": "pipeline", "case": f"{m} image", "model": m, "n": n, "data": folder}
                     for m in opts.image_models]
    return jobs


def _ints(value: str) -> list[int]:
    return [int(v) for v in value.split(",") if v]


def _names(value: str) -> list[str]:
    return [v for v in value.split(",") if v]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--sizes", type=_ints, default=None, help="text rows, comma-separated (1000,10000,100000)")
    parser.add_argument("--image_sizes", type=_ints, default=None, help="images, comma-separated (as --sizes)")
    parser.add_argument("--models", type=_names, default=None, help="text models (lstm,minilm)")
    parser.add_argument("--image_models", type=_names, default=None, help="image models (lstm; e.g. mobilenet_v2)")
    parser.add_argument("--parts", type=_names, default=["pipeline", "micro"], help="pipeline,micro")
    parser.add_argument("--train_steps", type=int, default=None, help="optimiser steps timed per case (20)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--eval_rows", type=int, default=None, help="validation rows evaluated (1000)")
    parser.add_argument("--infer_rows", type=int, default=None, help="test inputs given to the Predictor (500)")
    parser.add_argument("--bootstrap_samples", type=int, default=None, help="compare's resamples (1000)")
    parser.add_argument("--compare_runs", type=_ints, default=None, help="run counts for compare (2,8,32)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per child (default: torch's)")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes and models: checks that the script runs")
    parser.add_argument("--output", default=None, help="results JSON (default benchmarks/results/<date>-scaling.json)")
    parser.add_argument("--combine", nargs="+", default=None, metavar="JSON",
                        help="measure nothing: merge earlier results files (runs of different sizes or models) into "
                             "--output, its tables and its figure")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.child:
        child(json.loads(opts.child))
        return 0
    if opts.combine:
        parts = [json.loads(Path(f).read_text()) for f in opts.combine]
        # a case measured in several files: the last file's
        latest = {(r["kind"], r.get("case"), r["n"]): r for part in parts for r in part["pipeline"] + part["micro"]}
        results = [*latest.values(), *[part["compare_runs"] for part in parts if part.get("compare_runs")][-1:]]
        output = Path(opts.output or ROOT / "benchmarks" / "results" / f"{time.strftime('%Y-%m-%d')}-scaling.json")
        sources = {f: part["settings"] for f, part in zip(opts.combine, parts, strict=True)}
        report(results, opts, output, sources)
        return 0
    size = TINY if opts.tiny else FULL
    for key in ("sizes", "image_sizes", "models", "image_models", "compare_runs"):
        if getattr(opts, key) is None:
            setattr(opts, key, size[key])
    unknown = set(opts.parts) - {"pipeline", "micro"}
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}: choose from pipeline, micro")
    suffix = "-tiny" if opts.tiny else ""
    output = Path(opts.output or ROOT / "benchmarks" / "results" / f"{time.strftime('%Y-%m-%d')}-scaling{suffix}.json")
    with tempfile.TemporaryDirectory(prefix="hfp-scaling-") as tmp:
        workdir = Path(tmp)
        with open(workdir / "log.txt", "w") as log:
            results = [run_job(job, workdir, log) for job in jobs_for(opts, size, workdir)]
    report(results, opts, output)
    return 0


def report(results: list[dict[str, Any]], opts: argparse.Namespace, output: Path,
           sources: dict[str, Any] | None = None) -> None:
    """The results file, the figure beside it and the Markdown tables."""
    pipeline = [r for r in results if r["kind"] == "pipeline"]
    micro = [r for r in results if r["kind"] == "micro"]
    compare_runs = next((r for r in results if r["kind"] == "compare_runs"), None)
    rows = analyse(pipeline, micro)

    from hf_project.runs import atomic_write_text, git_state

    saved = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": bench_train.machine(),
             "git": git_state(), "settings": {k: v for k, v in vars(opts).items() if k != "child"},
             **({"combined_from": sources} if sources else {}),  # each file's own settings
             "pipeline": pipeline, "micro": micro, "compare_runs": compare_runs, "growth": rows}
    atomic_write_text(output, json.dumps(saved, indent=2) + "\n")
    figure = output.with_suffix(".png")
    plot(pipeline, micro, figure)
    sizes = sorted({n for r in rows for n in r["n"]})
    if pipeline:
        print(pipeline_table(pipeline), end="\n\n")
    print(growth_table(rows, sizes), end="\n\n")
    if compare_runs:
        print(compare_runs_table(compare_runs), end="\n\n")
    flagged = [f"{r['case']}: {r['step']}" for r in rows if r["superlinear"]]
    print(f"faster than linear (exponent > {SUPERLINEAR}, >= {MIN_SECONDS} s): {', '.join(flagged) or 'none'}")
    print(f"results: {output}\nfigure: {figure}")


if __name__ == "__main__":
    sys.exit(main())
