"""Plots must be valid PNGs written atomically, for any shape of log history and 2..50 classes, and the sample-inputs
figure must draw images, spectrograms and texts of the classes it is given."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib.figure import Figure

from hf_project import plots
from hf_project.plots import plot_confusion_matrix, plot_loss

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _log_history(train: bool = True, evaluation: bool = True) -> list[dict]:
    history: list[dict] = []
    for step in range(10, 210, 10):
        if train:
            history.append(
                {"loss": 2.0 / (1 + step / 50), "learning_rate": 1e-5, "epoch": step / 100, "step": step}
            )
        if evaluation and step % 50 == 0:
            history.append(
                {"eval_loss": 1.5 / (1 + step / 80), "eval_accuracy": 0.5, "epoch": step / 100, "step": step}
            )
    # Trainer.train() appends a summary entry with "train_loss" but no "loss"; it must be ignored.
    history.append({"train_runtime": 12.3, "train_loss": 0.9, "epoch": 2.0, "step": 200})
    return history


def _read_png(path: Path) -> np.ndarray:
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    return image


def _assert_only(directory: Path, *names: str) -> None:
    # Atomic writes must leave no ".<name>.<hex>.tmp" files behind.
    assert sorted(p.name for p in directory.iterdir()) == sorted(names)


@pytest.mark.parametrize(
    ("train", "evaluation", "best_step"),
    [(True, True, 150), (True, True, None), (False, True, 100), (True, False, None), (False, False, None)],
    ids=["both-best", "both", "eval-only", "train-only", "empty"],
)
def test_plot_loss_writes_png(tmp_path: Path, train: bool, evaluation: bool, best_step: int | None) -> None:
    path = tmp_path / "loss.png"
    plot_loss(_log_history(train, evaluation), path, best_step=best_step, title="loss")
    height, width, _ = _read_png(path).shape
    assert width > 400 and height > 300
    _assert_only(tmp_path, "loss.png")


def test_plot_loss_accepts_str_path_and_creates_dir(tmp_path: Path) -> None:
    path = tmp_path / "plots" / "loss.png"
    plot_loss(_log_history(), str(path))
    _read_png(path)


def test_plot_loss_overwrites_atomically(tmp_path: Path) -> None:
    path = tmp_path / "loss.png"
    plot_loss(_log_history(evaluation=False), path)
    plot_loss(_log_history(), path, best_step=100)
    _read_png(path)
    _assert_only(tmp_path, "loss.png")


def test_failed_save_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "loss.png"
    plot_loss(_log_history(), path)
    original = path.read_bytes()

    def broken_savefig(self: Figure, fname: object, **kwargs: object) -> None:
        fname.write(b"partial")  # type: ignore[attr-defined]
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        plot_loss(_log_history(), path, best_step=50)
    assert path.read_bytes() == original
    _assert_only(tmp_path, "loss.png")


def _matrix(num_classes: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    matrix = rng.integers(0, 20, size=(num_classes, num_classes))
    np.fill_diagonal(matrix, 100)
    matrix[1] = 0  # a class with no examples must not produce NaNs when normalising
    return matrix.tolist()


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("num_classes", [2, 5, 20, 43, 50])
def test_plot_confusion_matrix_writes_png(tmp_path: Path, num_classes: int, normalize: bool) -> None:
    names = [f"class_{i}_name" for i in range(num_classes)]
    path = tmp_path / "cm.png"
    plot_confusion_matrix(_matrix(num_classes), names, path, normalize=normalize, title="test")
    _read_png(path)
    _assert_only(tmp_path, "cm.png")


def test_confusion_matrix_figure_grows_with_classes(tmp_path: Path) -> None:
    sizes = {}
    for num_classes in (3, 43):
        path = tmp_path / f"cm{num_classes}.png"
        plot_confusion_matrix(_matrix(num_classes), [f"c{i}" for i in range(num_classes)], path)
        sizes[num_classes] = _read_png(path).shape[:2]
    assert sizes[43][0] > 2 * sizes[3][0] and sizes[43][1] > 2 * sizes[3][1]
    _assert_only(tmp_path, "cm3.png", "cm43.png")


def test_confusion_matrix_shape_mismatch(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not match 3 label names"):
        plot_confusion_matrix(_matrix(4), ["a", "b", "c"], tmp_path / "cm.png")
    _assert_only(tmp_path)


def test_plots_do_not_register_pyplot_figures(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plot_loss(_log_history(), tmp_path / "loss.png")
    plot_confusion_matrix(_matrix(4), list("abcd"), tmp_path / "cm.png")
    assert plt.get_fignums() == before


def test_confusions_are_ordered_by_count_then_share_then_class() -> None:
    # the one order of the confused-examples figure (most_confused) and of the report's confused pairs
    matrix = [[5, 2, 3],   # class 0: 10 examples, 0->2 the largest mistake, 0->1 a fifth of the class
              [0, 2, 2],   # class 1: 4 examples, 1->2 as many mistakes as 0->1 but half of its class
              [2, 2, 0]]   # class 2: two mistakes of the same count and share: class order decides
    expected = [(0, 2, 3), (1, 2, 2), (2, 0, 2), (2, 1, 2), (0, 1, 2)]
    assert plots.order_confusions(matrix) == expected
    truth = [t for t, row in enumerate(matrix) for p, n in enumerate(row) for _ in range(n)]
    predicted = [p for row in matrix for p, n in enumerate(row) for _ in range(n)]
    order = np.random.default_rng(0).permutation(len(truth))  # the order of the examples does not matter
    assert plots.most_confused([truth[i] for i in order], [predicted[i] for i in order], k=4) == expected[:4]
    assert plots.order_confusions(np.diag([3, 4])) == [] and plots.most_confused([], []) == []


# ---- sample inputs -----------------------------------------------------------------------------------------------


def test_pick_examples_takes_a_few_of_each_first_class_and_depends_only_on_the_seed() -> None:
    labels = [i % 12 for i in range(240)]  # 12 classes, 20 rows each
    picked = plots.pick_examples(labels, "image", seed=2023)
    per_class, max_classes = plots.SAMPLE_PER_CLASS["image"], plots.SAMPLE_MAX_CLASSES["image"]
    classes = [labels[i] for i in picked]
    assert classes == sorted(classes)  # grouped by class, in label order
    assert {c: classes.count(c) for c in set(classes)} == {c: per_class for c in range(max_classes)}
    assert picked == plots.pick_examples(labels, "image", seed=2023)
    assert picked != plots.pick_examples(labels, "image", seed=7)
    # a class with fewer rows than asked gives what it has
    few = [0, 1, 1, 1, 1, 1]
    assert [few[i] for i in plots.pick_examples(few, "text")] == [0, 1, 1]


def test_log_mel_puts_a_tone_in_its_band() -> None:
    from transformers.audio_utils import hertz_to_mel

    rate = plots.SPECTROGRAM_RATE
    t = np.arange(rate // 2) / rate
    spec = plots.log_mel(np.sin(2 * np.pi * 1000 * t).astype(np.float32), rate)
    assert spec.shape == (plots.SPECTROGRAM_MELS, 51)  # 10 ms hop over 0.5 s, centred frames
    assert spec.max() - spec.min() == pytest.approx(80, abs=0.1)  # dB over an 80 dB range
    low, high = hertz_to_mel(20.0, "slaney"), hertz_to_mel(rate / 2, "slaney")
    centre = (hertz_to_mel(1000.0, "slaney") - low) / (high - low) * plots.SPECTROGRAM_MELS
    assert abs(int(spec[:, 25].argmax()) - centre) <= 1.5
    assert plots.log_mel(np.zeros(100, np.float32), rate).shape[0] == plots.SPECTROGRAM_MELS  # shorter than a window


def _images(n: int) -> list:
    from PIL import Image

    rng = np.random.default_rng(0)
    grey = [Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8), mode="L") for _ in range(n // 2)]
    rgb = [Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8), mode="RGB") for _ in range(n - n // 2)]
    return grey + rgb


@pytest.mark.parametrize("modality", ["image", "audio", "text"])
def test_plot_sample_inputs_writes_png(tmp_path: Path, modality: str) -> None:
    rate = plots.SPECTROGRAM_RATE
    values = {
        "image": _images(12),
        "audio": [np.sin(2 * np.pi * 300 * (k + 1) * np.arange(int(rate * 0.3)) / rate).astype(np.float32)
                  for k in range(12)],
        "text": [f"sample text number {k} " * (k + 1) for k in range(12)],
    }[modality]
    examples = [(f"class{k // 4}", v) for k, v in enumerate(values)]  # three classes of four
    path = tmp_path / "samples.png"
    plots.plot_sample_inputs(examples, modality, path, num_classes=5)
    height, width, _ = _read_png(path).shape
    assert width > height  # three classes stay within a page's width and height
    _assert_only(tmp_path, "samples.png")


def test_sample_inputs_of_many_classes_stay_within_a_page(tmp_path: Path) -> None:
    rate = plots.SPECTROGRAM_RATE
    clip = np.sin(2 * np.pi * 440 * np.arange(rate // 4) / rate).astype(np.float32)
    plots.plot_sample_inputs([(f"c{k // 2}", clip) for k in range(16)], "audio", tmp_path / "a.png")
    plots.plot_sample_inputs([(str(k // 4), img) for k, img in enumerate(_images(40))], "image", tmp_path / "i.png")
    for name in ("a.png", "i.png"):
        height, width, _ = _read_png(tmp_path / name).shape
        assert height < 1.1 * width, name  # 8 classes of clips: two per row; 10 classes of images: one per column
    with pytest.raises(ValueError, match="no examples"):
        plots.plot_sample_inputs([], "image", tmp_path / "none.png")
