"""Image stage: sources, processors, train-only augmentation, the LSTM over pixel rows, runs end to end, bad input."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_csv
from image_fixtures import CLASSES, make_image_folder, pattern, save_tiny_checkpoint
from PIL import Image
from test_cli import CONTRACT, bad_run, finetune

from hf_project.config import parse_args
from hf_project.data import prepare_data
from hf_project.errors import UserError
from hf_project.modalities import image
from hf_project.models import load_model
from hf_project.models.registry import resolve
from hf_project.runs import find_runs, read_status
from hf_project.training import run_experiment

PRETRAINED = ("vit", "convnext", "resnet")
IMAGE_CONTRACT = tuple(n for n in CONTRACT if n != "model/tokenizer.json")
TINY = ["--per_device_train_batch_size", "8", "--lstm_embedding_dim", "16", "--lstm_hidden_size", "16",
        "--lstm_image_size", "16", "--logging_steps", "2"]


@pytest.fixture(scope="session")
def shapes(tmp_path_factory) -> Path:
    """3 classes x 30 PNGs (stripes across, stripes down, blobs), greyscale and RGB, of varying sizes."""
    return make_image_folder(tmp_path_factory.mktemp("data") / "shapes", per_class=30)


@pytest.fixture(scope="session")
def tiny_image_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("image-models")
    return {kind: save_tiny_checkpoint(kind, root / f"tiny-{kind}") for kind in PRETRAINED}


def config(dataset: Path | str, model: str, *extra: str, out: Path | None = None):
    dirs = ["--runs_dir", str(out / "runs"), "--weights_dir", str(out / "weights")] if out else []
    return parse_args(["--dataset", str(dataset), "--model", model, *TINY, *dirs, *extra])


def staged(dataset: Path, model: str, *extra: str):
    cfg = config(dataset, model, *extra)
    data = prepare_data(cfg.data, cfg.train.seed)
    spec = resolve(model)
    processor = image.load_processor(spec, data, cfg)
    return data, processor, image.prepare(data, processor, cfg), cfg


# --- the stage ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", [*PRETRAINED, "lstm"])
def test_stage_gives_model_inputs_with_augmentation_on_train_only(shapes, tiny_image_models, kind):
    model = "lstm" if kind == "lstm" else str(tiny_image_models[kind])
    data, processor, prepared, cfg = staged(shapes, model, "--random_resized_crop", "--horizontal_flip")
    key, shape = ("input_features", (16, 16)) if kind == "lstm" else ("pixel_values", (3, 32, 32))
    greys = [i for i, img in enumerate(data.splits["train"]["image"]) if img.mode == "L"]
    assert greys, "the fixture must hold greyscale images"
    for split, ds in prepared.items():
        example = ds[greys[0] if split == "train" else 0]
        assert set(example) == {key, "labels"}
        assert tuple(example[key].shape) == shape and example[key].dtype == torch.float32  # grey -> RGB checkpoints
        assert example["labels"] == data.splits[split][greys[0] if split == "train" else 0]["label"]
    # Evaluation is deterministic; training draws new augmentations from torch's RNG, reproducibly.
    for split in ("validation", "test"):
        assert torch.equal(prepared[split][0][key], prepared[split][0][key])
    torch.manual_seed(0)
    first = [prepared["train"][i][key] for i in range(4)]
    again = [prepared["train"][i][key] for i in range(4)]
    torch.manual_seed(0)
    replay = [prepared["train"][i][key] for i in range(4)]
    assert any(not torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(first, replay, strict=True))
    batch = image.collator(processor)([prepared["train"][i] for i in range(3)])
    assert batch[key].shape == (3, *shape) and batch["labels"].dtype == torch.long


def test_augmentation_switched_off_gives_the_evaluation_transform(shapes, tiny_image_models):
    _, _, prepared, _ = staged(shapes, str(tiny_image_models["convnext"]), "--random_resized_crop", "false",
                               "--horizontal_flip", "false")
    data, processor, _, cfg = staged(shapes, str(tiny_image_models["convnext"]))
    evaluate = image.make_transform(processor, cfg, train=False)
    for i in range(5):
        row = data.splits["train"][i]
        expected = evaluate({"image": [row["image"]], "label": [row["label"]]})["pixel_values"][0]
        assert torch.equal(prepared["train"][i]["pixel_values"], expected)


@pytest.mark.parametrize("kind", ["convnext", "lstm"])
def test_default_augmentation_follows_the_model_family(shapes, tiny_image_models, kind):
    """Unset crop/flip take the family's defaults (config.AUGMENTATION_DEFAULTS), in the stage as in for_run."""
    from hf_project.config import augmentation_defaults

    model = "lstm" if kind == "lstm" else str(tiny_image_models[kind])
    family = augmentation_defaults(from_scratch=kind == "lstm")
    data, processor, prepared, cfg = staged(shapes, model)
    key = "input_features" if kind == "lstm" else "pixel_values"
    evaluate = image.make_transform(processor, cfg, train=False)
    torch.manual_seed(0)
    differs = []
    for i in range(8):
        row = data.splits["train"][i]
        expected = evaluate({"image": [row["image"]], "label": [row["label"]]})[key][0]
        differs.append(not torch.equal(prepared["train"][i][key], expected))
    assert any(differs) == (family["random_resized_crop"] or family["horizontal_flip"])
    assert cfg.for_run(model, 1).data.horizontal_flip == family["horizontal_flip"]


def test_image_size_resizes_pretrained_inputs_and_is_saved_with_the_processor(shapes, tiny_image_models, tmp_path):
    _, processor, prepared, _ = staged(shapes, str(tiny_image_models["convnext"]), "--image_size", "24")
    assert tuple(prepared["validation"][0]["pixel_values"].shape) == (3, 24, 24)
    assert tuple(prepared["train"][0]["pixel_values"].shape) == (3, 24, 24)
    processor.save_pretrained(tmp_path)
    from transformers import AutoImageProcessor

    again = AutoImageProcessor.from_pretrained(tmp_path)
    assert tuple(image.inputs_for([Image.new("RGB", (50, 70))], again)["pixel_values"].shape) == (1, 3, 24, 24)


def test_flip_alone_mirrors_or_keeps_the_evaluation_tensor(shapes, tiny_image_models):
    data, processor, prepared, cfg = staged(shapes, str(tiny_image_models["vit"]), "--random_resized_crop", "false",
                                            "--horizontal_flip")
    evaluate = image.make_transform(processor, cfg, train=False)
    torch.manual_seed(1)
    flipped = 0
    for i in range(12):
        row = data.splits["train"][i]
        plain = evaluate({"image": [row["image"]], "label": [row["label"]]})["pixel_values"][0]  # (3, H, W)
        out = prepared["train"][i]["pixel_values"]
        assert torch.equal(out, plain) or torch.equal(out, plain.flip(-1))
        flipped += not torch.equal(out, plain)
    assert 0 < flipped < 12


def test_random_resized_crop_box_follows_scale_and_ratio():
    torch.manual_seed(0)
    boxes = [image.crop_box(40, 30, (0.5, 1.0)) for _ in range(200)]
    for left, top, right, bottom in boxes:
        w, h = right - left, bottom - top
        assert 0 <= left < right <= 40 and 0 <= top < bottom <= 30
        assert 0.5 - 0.06 <= w * h / 1200 <= 1.0 and 3 / 4 - 0.1 <= w / h <= 4 / 3 + 0.1
    assert len(set(boxes)) > 150
    torch.manual_seed(0)
    assert [image.crop_box(40, 30, (0.5, 1.0)) for _ in range(200)] == boxes
    assert image.crop_box(100, 10, (0.99, 1.0)) == (43, 0, 56, 10)  # no fit: centre crop at the widest ratio


def test_lstm_rows_are_standardised_on_train_and_rebuilt_from_the_config(shapes):
    data, processor, prepared, _ = staged(shapes, "lstm", "--random_resized_crop", "false",
                                          "--horizontal_flip", "false")
    rows = torch.stack([prepared["train"][i]["input_features"] for i in range(len(prepared["train"]))])
    assert rows.mean().item() == pytest.approx(0.0, abs=1e-4) and rows.std().item() == pytest.approx(1.0, abs=1e-2)
    inputs = image.lstm_inputs(processor, None)
    assert inputs["input_type"] == "features" and inputs["input_dim"] == 16
    rebuilt = image.RowImageProcessor.from_frontend(json.loads(json.dumps(inputs["frontend"])))
    img = data.splits["test"][0]["image"]
    assert torch.equal(rebuilt([img])["input_features"], processor([img])["input_features"])
    assert image.lstm_inputs(object(), None) == {}  # pretrained models take no LSTM front-end


def test_image_column_of_a_hub_style_dataset(tmp_path, tiny_image_models):
    """Hub datasets arrive as parquet with an Image feature holding bytes; any column name is found."""
    from datasets import Dataset, Features, Value
    from datasets import Image as ImageFeature

    rng = np.random.default_rng(3)
    kinds = [CLASSES[i % 3] for i in range(30)]
    features = Features({"picture": ImageFeature(), "label": Value("string")})
    Dataset.from_dict({"picture": [pattern(k, rng) for k in kinds], "label": kinds}, features=features).to_parquet(
        tmp_path / "hub.parquet")
    data, _, prepared, _ = staged(tmp_path / "hub.parquet", str(tiny_image_models["vit"]))
    assert data.modality == "image" and data.label_names == list(CLASSES)
    assert prepared["test"][0]["pixel_values"].shape == (3, 32, 32)
    # A broken image among the bytes is named by its row.
    values = [{"bytes": b"\x89PNG garbage", "path": None} if i == 4 else pattern(k, rng) for i, k in enumerate(kinds)]
    Dataset.from_dict({"picture": values, "label": kinds}, features=features).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(UserError, match=r"the image in row 4 of the dataset's train split cannot be decoded"):
        staged(tmp_path / "bad.parquet", "lstm")


# --- runs --------------------------------------------------------------------------------------------------------

def predictions(run_dir: Path) -> list[dict]:
    with open(run_dir / "predictions_test.csv") as f:
        return list(csv.DictReader(f))


def test_end_to_end_every_image_model_type_through_the_script(shapes, tiny_image_models, tmp_path):
    models = [str(tiny_image_models[k]) for k in PRETRAINED] + ["lstm"]
    proc = finetune(["--dataset", str(shapes), "--model", ",".join(models), "--num_train_epochs", "1", *TINY,
                     "--runs_dir", str(tmp_path / "runs"), "--weights_dir", str(tmp_path / "weights")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dirs = find_runs(tmp_path / "runs")
    assert sorted(d.parent.name for d in run_dirs) == sorted(["lstm", *(f"tiny-{k}" for k in PRETRAINED)])
    assert len({json.loads((d / "split.json").read_text())["hash"] for d in run_dirs}) == 1
    for run_dir in run_dirs:
        name = run_dir.parent.name
        files = IMAGE_CONTRACT + (() if name == "lstm" else ("model/preprocessor_config.json",))
        for file in files:
            assert (run_dir / file).is_file() and (run_dir / file).stat().st_size > 0, f"{run_dir}/{file}"
        assert read_status(run_dir) == "complete" and not (run_dir / "checkpoints").exists()
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["label_names"] == list(CLASSES) and manifest["dataset"]["name"] == "shapes"
        rows, split = predictions(run_dir), json.loads((run_dir / "split.json").read_text())
        assert [int(r["source_row"]) for r in rows] == split["test"]["indices"]  # every test row, once, in order
        for r in rows:  # the input is the image file, in the folder of its class
            assert Path(r["input"]).is_file() and Path(r["input"]).parent.name == r["label"]
        check_weights_reproduce_predictions(tmp_path / "weights" / "shapes" / name, rows)


def check_weights_reproduce_predictions(weights: Path, rows: list[dict]) -> None:
    """weights/<dataset>/<model>/ loads with its processor (or the LSTM's, from the config) and gives the
    probabilities written at test time."""
    model, processor = load_model(weights)
    if processor is None:
        processor = image.RowImageProcessor.from_frontend(model.config.frontend)
    else:
        assert (weights / "preprocessor_config.json").is_file()
    images = [Image.open(r["input"]).convert(image.color_mode(processor)) for r in rows[:6]]
    with torch.no_grad():
        probs = model(**processor(images, return_tensors="pt")).logits.softmax(-1)
    expected = torch.tensor([[float(r[f"p_{c}"]) for c in CLASSES] for r in rows[:6]])
    assert torch.allclose(probs, expected, atol=1e-5)


def test_training_beats_chance_and_the_loss_falls(shapes, tiny_image_models, tmp_path):
    cfg = config(shapes, f"{tiny_image_models['resnet']},lstm", "--num_train_epochs", "6", "--learning_rate", "3e-3",
                 "--lstm_learning_rate", "1e-2", "--lstm_image_size", "32", "--early_stopping_patience", "0",
                 "--logging_steps", "1", "--random_resized_crop", "--horizontal_flip", out=tmp_path)
    results = run_experiment(cfg)
    for name, metrics in results.items():
        assert metrics["test"]["accuracy"] >= 0.7, (name, metrics["test"])  # chance: 1/3
    for run_dir in find_runs(tmp_path / "runs"):
        losses = [e["loss"] for e in json.loads((run_dir / "log_history.json").read_text()) if "loss" in e]
        assert losses[0] == pytest.approx(math.log(3), abs=0.35)  # near-uniform predictions at the start
        assert np.mean(losses[-5:]) < 0.7 * losses[0]


def test_same_seed_same_augmented_run(shapes, tmp_path):
    def run(out: Path) -> tuple[dict, list[dict]]:
        metrics = run_experiment(config(shapes, "lstm", "--num_train_epochs", "2", "--random_resized_crop",
                                        "--horizontal_flip", out=out))["lstm"]
        (run_dir,) = find_runs(out / "runs")
        history = json.loads((run_dir / "log_history.json").read_text())
        return metrics["test"], [{k: v for k, v in e.items() if "runtime" not in k and "per_second" not in k}
                                 for e in history]

    assert run(tmp_path / "a") == run(tmp_path / "b")


def test_builtin_digits_lstm_beats_chance_widely(tmp_path):
    metrics = run_experiment(config("digits", "lstm", "--lstm_image_size", "8", "--lstm_hidden_size", "32",
                                    "--lstm_embedding_dim", "32", "--lstm_num_train_epochs", "4",
                                    "--lstm_learning_rate", "1e-2", "--per_device_train_batch_size", "32",
                                    "--horizontal_flip", "false", "--logging_steps", "20", out=tmp_path))["lstm"]
    assert metrics["test"]["num_examples"] == 359 and metrics["test"]["accuracy"] > 0.6  # chance: 0.1
    (run_dir,) = find_runs(tmp_path / "runs")
    frontend = json.loads((run_dir / "model" / "config.json").read_text())["frontend"]
    assert frontend["image_size"] == 8 and frontend["layout"] == "rows"
    assert predictions(run_dir)[0]["input"] == "<image 0>"  # in-memory images have no file


def test_provided_train_test_folders_are_used_as_is(tmp_path):
    root = make_image_folder(tmp_path / "split_shapes", per_class=12, split="train")
    make_image_folder(root, per_class=4, seed=1, split="test")
    cfg = config(root, "lstm", "--num_train_epochs", "1", out=tmp_path)
    data = prepare_data(cfg.data, cfg.train.seed)
    assert data.split["test"] == {"source": "test", "indices": list(range(12))}
    assert data.split["validation"]["source"] == "train" and len(data.splits["train"]) + len(
        data.splits["validation"]) == 36
    run_experiment(cfg)
    (run_dir,) = find_runs(tmp_path / "runs")
    assert all(Path(r["input"]).parent.parent == root / "test" for r in predictions(run_dir))


# --- bad input ---------------------------------------------------------------------------------------------------

@pytest.fixture
def bad_inputs(tmp_path, shapes) -> Path:
    import shutil

    for name in ("garbage", "truncated", "empty_class"):
        shutil.copytree(shapes, tmp_path / name)
    (tmp_path / "garbage" / "blob" / "zz_notes.png").write_bytes(b"these are notes, not a picture")
    png = (shapes / "vertical" / "vertical_003.png").read_bytes()
    (tmp_path / "truncated" / "vertical" / "vertical_003.png").write_bytes(png[: len(png) // 2])
    (tmp_path / "empty_class" / "diagonal").mkdir()
    (tmp_path / "ok").symlink_to(shapes, target_is_directory=True)
    (tmp_path / "flat").mkdir()
    for path in sorted((shapes / "blob").iterdir())[:5]:
        shutil.copy(path, tmp_path / "flat")
    write_csv(tmp_path / "text.csv", [{"text": f"some words {i}", "label": "ab"[i % 2]} for i in range(20)])
    return tmp_path


@pytest.mark.parametrize(
    ("dataset", "model", "message"),
    [
        ("garbage", "lstm", "image file {d}/garbage/blob/zz_notes.png cannot be decoded"),
        ("garbage", "vit", "image file {d}/garbage/blob/zz_notes.png cannot be decoded"),
        ("truncated", "lstm", "image file {d}/truncated/vertical/vertical_003.png cannot be decoded"),
        ("empty_class", "lstm", "class folder {d}/empty_class/diagonal has no image or audio files"),
        ("flat", "lstm", "folder {d}/flat has no class sub-folders"),
        ("text.csv", "vit", "model 'vit' classifies image, but this dataset is text: pick a text model"),
        ("text.csv", "tiny-vit", "classifies image, but this dataset is text"),
        ("garbage", "tiny_bert", "model '{bert}' classifies text, but this dataset is image: pick"),
        ("ok", "hub-vit", "cannot load model 'google/vit-base-patch16-224-in21k'"),  # offline, not cached
    ],
)
def test_bad_image_input_one_line_error_and_nothing_complete(
    bad_inputs, tiny_image_models, tiny_bert, capsys, dataset, model, message
):
    # the "vit" alias stands for a hub checkpoint; the local tiny ViT gets past the modality check the same way
    models = {"tiny_bert": str(tiny_bert), "tiny-vit": str(tiny_image_models["vit"]), "hub-vit": "vit",
              "vit": "vit" if dataset.endswith(".csv") else str(tiny_image_models["vit"])}
    runs, weights = bad_inputs / "runs", bad_inputs / "weights"
    line = bad_run(["--dataset", str(bad_inputs / dataset), "--model", models.get(model, model), *TINY,
                    "--runs_dir", str(runs), "--weights_dir", str(weights)], capsys)
    assert message.format(d=bad_inputs, bert=tiny_bert.name) in line
    assert find_runs(runs) == []  # nothing complete; a started run is marked failed
    assert all(read_status(d) == "failed" for d in find_runs(runs, complete_only=False))
    assert not any(weights.rglob("*.safetensors"))
