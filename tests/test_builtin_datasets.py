"""Builtin fashion_mnist (Debian's IDX files) and spoken_words (espeak-ng): reading, caching, determinism, errors,
and both through prepare_data; debtags and package_sizes (apt's package index): parsing a small index, finding the
index, and the real one where apt-get update has run. The default suite works on small real subsets; the full sets
run with -m slow."""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
import shutil
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from datasets import List, Value
from PIL import Image

from hf_project.config import DataArguments
from hf_project.data import builtin, prepare_data
from hf_project.errors import UserError
from hf_project.modalities.audio import load_waveform

SMALL_TRAIN, SMALL_TEST = 8, 3  # real Fashion-MNIST images per class in the small copy
WORDS, VOICES, RATES, PITCHES = ("go", "no", "on", "off"), ("en", "en-us+f2", "en-029+m3"), (150, 200), (40, 60)


def write_idx(path: Path, array: np.ndarray) -> Path:
    header = b"\0\0\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())
    return path


@pytest.fixture(scope="session")
def fashion_arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return builtin.fashion_mnist_arrays()


@pytest.fixture(scope="session")
def small_fashion_root(tmp_path_factory, fashion_arrays) -> Path:
    """The first few images of each class of the real files, written back as IDX files of the same names."""
    root = tmp_path_factory.mktemp("fashion-mnist")
    for split, per_class in (("train", SMALL_TRAIN), ("test", SMALL_TEST)):
        images, labels = fashion_arrays[split]
        keep = np.sort(np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(10)]))
        image_file, label_file, _ = builtin.FASHION_MNIST_FILES[split]
        write_idx(root / image_file, images[keep])
        write_idx(root / label_file, labels[keep])
    return root


@pytest.fixture
def small_fashion(monkeypatch, small_fashion_root) -> Path:
    """load_builtin('fashion_mnist') reads the small copy."""
    sizes = {"train": 10 * SMALL_TRAIN, "test": 10 * SMALL_TEST}
    files = {split: (*names[:2], sizes[split]) for split, names in builtin.FASHION_MNIST_FILES.items()}
    monkeypatch.setattr(builtin, "FASHION_MNIST_FILES", files)
    monkeypatch.setattr(builtin, "FASHION_MNIST_DIR", small_fashion_root)
    return small_fashion_root


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------------------------
# fashion_mnist


def test_idx_files_of_the_debian_package(fashion_arrays):
    train_images, train_labels = fashion_arrays["train"]
    test_images, test_labels = fashion_arrays["test"]
    assert train_images.shape == (60_000, 28, 28) and train_images.dtype == np.uint8
    assert test_images.shape == (10_000, 28, 28) and test_labels.shape == (10_000,)
    assert Counter(train_labels.tolist()) == {c: 6000 for c in range(10)}
    assert Counter(test_labels.tolist()) == {c: 1000 for c in range(10)}
    assert 0 < train_images.mean() < 255 and train_images.max() == 255  # real pictures, not blank pages
    assert builtin.FASHION_MNIST_LABELS[train_labels[0]] == "Ankle boot"  # the dataset's well-known first image


@pytest.mark.parametrize(("data", "message"), [
    (b"\0\0\x09\x01" + struct.pack(">I", 3) + b"abc", "not an IDX file of unsigned bytes"),
    (b"\0\0\x08\x02" + struct.pack(">II", 2, 3) + b"abcde", "holds 5 values, its header says shape (2, 3)"),
])
def test_read_idx_checks_magic_and_size(tmp_path, data, message):
    path = tmp_path / "bad-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(data))
    with pytest.raises(UserError, match=re.escape(message)):
        builtin.read_idx(path)
    path.write_bytes(data)  # not gzipped at all
    with pytest.raises(UserError, match="not a readable gzip file"):
        builtin.read_idx(path)


def test_fashion_mnist_without_the_package_names_the_install(monkeypatch, tmp_path):
    monkeypatch.setattr(builtin, "FASHION_MNIST_DIR", tmp_path / "absent")
    with pytest.raises(UserError, match=r"sudo apt-get install -y dataset-fashion-mnist"):
        builtin.load_builtin("fashion_mnist")


def test_fashion_mnist_wrong_counts_are_an_error(monkeypatch, small_fashion_root):
    monkeypatch.setattr(builtin, "FASHION_MNIST_DIR", small_fashion_root)  # official counts expected, small files
    with pytest.raises(UserError, match=r"expected \(60000, 28, 28\)"):
        builtin.fashion_mnist_arrays()


def test_fashion_mnist_dataset_and_its_cached_copy(small_fashion, tmp_path, fashion_arrays):
    first = builtin.load_fashion_mnist(cache_dir=tmp_path)
    (cached,) = (tmp_path / "builtin").iterdir()  # one finished folder, no temporary one left behind
    assert cached.name.startswith("fashion_mnist-")
    stamp = {p: p.stat().st_mtime_ns for p in cached.rglob("*")}
    again = builtin.load_fashion_mnist(cache_dir=tmp_path)
    assert {p: p.stat().st_mtime_ns for p in cached.rglob("*")} == stamp  # read, not rebuilt
    assert list(first) == ["train", "test"] and len(first["train"]) == 80 and len(first["test"]) == 30
    features = first["train"].features
    assert features["label"].names == list(builtin.FASHION_MNIST_LABELS)
    for split in first:
        assert first[split]["label"] == again[split]["label"]
        raw_a = first[split].cast_column("image", type(features["image"])(decode=False))["image"]
        raw_b = again[split].cast_column("image", type(features["image"])(decode=False))["image"]
        assert [r["bytes"] for r in raw_a] == [r["bytes"] for r in raw_b]
    image = first["train"][0]["image"]
    assert image.size == (28, 28) and image.mode == "L"
    # the PNG holds the IDX pixels exactly: the first kept training image is the first of the real file
    assert np.array_equal(np.asarray(image), fashion_arrays["train"][0][0])


def test_fashion_mnist_through_prepare_data_keeps_its_test_split(small_fashion):
    data = prepare_data(DataArguments(dataset="fashion_mnist"), seed=2023)
    assert data.modality == "image" and data.name == "fashion_mnist"
    assert data.label_names == list(builtin.FASHION_MNIST_LABELS)
    assert data.split["test"] == {"source": "test", "indices": list(range(10 * SMALL_TEST))}
    assert len(data.splits["train"]) + len(data.splits["validation"]) == 10 * SMALL_TRAIN
    test_labels = builtin.read_idx(small_fashion / builtin.FASHION_MNIST_FILES["test"][1])
    assert list(data.splits["test"]["label"]) == test_labels.tolist()  # the provided split, in its file's order


# ---------------------------------------------------------------------------------------------------------------
# spoken_words


def test_spoken_words_are_byte_identical_whatever_the_parallelism(tmp_path):
    clips = builtin.generate_spoken_words(tmp_path / "a", WORDS[:2], VOICES, RATES[:1], PITCHES, workers=1)
    builtin.generate_spoken_words(tmp_path / "b", WORDS[:2], VOICES, RATES[:1], PITCHES, workers=4)
    files = tree_bytes(tmp_path / "a")
    assert len(clips) == 2 * 3 * 2 and len(files) == len(clips) + 1  # + the manifest
    assert files == tree_bytes(tmp_path / "b")
    manifest = json.loads(files[builtin.MANIFEST])
    assert manifest["clips"] == clips and manifest["sampling_rate"] == 22050
    assert clips[0] == {"file": "go/en-s150-p40.wav", "word": "go", "voice": "en", "rate": 150, "pitch": 40}


def test_spoken_words_decode_at_16k(tmp_path):
    (clip,) = builtin.generate_spoken_words(tmp_path, ("stop",), ("en-us",), (175,), (50,))
    path = tmp_path / clip["file"]
    assert path.read_bytes()[:4] == b"RIFF"
    wave = load_waveform({"bytes": None, "path": str(path)}, 16000)
    assert wave.dtype == np.float32 and 0.3 * 16000 < len(wave) < 1.2 * 16000
    assert np.sqrt(np.mean(wave**2)) > 0.01  # speech, not silence


def test_every_default_voice_sounds_different(tmp_path):
    """Guards against espeak-ng's silent fallbacks (an unknown voice, or a variant it drops as for "en-gb+f2")."""
    clips = builtin.generate_spoken_words(tmp_path, ("left",), builtin.SPOKEN_VOICES, (175,), (50,))
    assert len(clips) == len(builtin.SPOKEN_VOICES) == 21
    digests = {hashlib.sha256((tmp_path / c["file"]).read_bytes()).digest() for c in clips}
    assert len(digests) == len(clips)


def test_duplicate_clips_are_dropped(tmp_path):
    # "en-gb+f2" sounds exactly like "en" in espeak-ng 1.51: the second copy goes, the manifest says so
    clips = builtin.generate_spoken_words(tmp_path, ("yes",), ("en", "en-gb+f2"), (175,), (50,))
    manifest = json.loads((tmp_path / builtin.MANIFEST).read_text())
    if manifest["dropped_duplicates"]:
        assert [c["voice"] for c in clips] == ["en"]
        dropped = "yes/en-gb_f2-s175-p50.wav"
        assert manifest["dropped_duplicates"] == [{"file": dropped, "same_as": "yes/en-s175-p50.wav"}]
        assert not (tmp_path / dropped).exists()
    else:  # a later espeak-ng that applies the variant: both stay
        assert len(clips) == 2


@pytest.mark.parametrize(("voices", "rates", "message"), [
    (("en-xx",), (175,), "no English voice 'en-xx'"),
    (("en-us+nosuch",), (175,), "no English voice 'en-us\\+nosuch'"),
    (("en-us",), (900,), "rates are 80..450"),
])
def test_spoken_words_bad_settings(tmp_path, voices, rates, message):
    with pytest.raises(UserError, match=message):
        builtin.generate_spoken_words(tmp_path, ("yes",), voices, rates, (50,))


def test_spoken_words_without_espeak_names_the_install(monkeypatch, tmp_path):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "espeak-ng" else real_which(name))
    with pytest.raises(UserError, match=r"sudo apt-get install -y espeak-ng"):
        builtin.load_spoken_words(WORDS, VOICES, RATES, PITCHES, cache_dir=tmp_path)


def test_spoken_words_generated_once_into_the_cache(tmp_path):
    first = builtin.load_spoken_words(WORDS[:2], VOICES[:2], RATES[:1], PITCHES[:1], cache_dir=tmp_path)
    (folder,) = (tmp_path / "builtin").iterdir()
    stamp = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    again = builtin.load_spoken_words(WORDS[:2], VOICES[:2], RATES[:1], PITCHES[:1], cache_dir=tmp_path)
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == stamp
    assert list(first) == ["train"]  # no held-out accent among these two voices
    assert first["train"].to_dict() == again["train"].to_dict()
    assert first["train"].column_names == ["audio", "label", "voice", "rate", "pitch"]
    row = first["train"][0]
    assert row["audio"]["path"].startswith(str(folder)) and row["voice"] == "en" and row["rate"] == 150
    # another word list is another folder, not a mix with this one
    builtin.load_spoken_words(WORDS[2:], VOICES[:1], RATES[:1], PITCHES[:1], cache_dir=tmp_path)
    assert len(list((tmp_path / "builtin").iterdir())) == 2


def test_spoken_words_hold_out_whole_accents_for_evaluation(tmp_path):
    voices = ("en", "en-us+f2", "en-029", "en-029+m3", "en-gb-x-gbcwmd+f2")
    splits = builtin.load_spoken_words(WORDS[:2], voices, RATES[:1], PITCHES[:1], cache_dir=tmp_path)
    accents = {split: {v.split("+")[0] for v in ds["voice"]} for split, ds in splits.items()}
    assert accents == {"train": {"en", "en-us"}, "validation": {"en-gb-x-gbcwmd"}, "test": {"en-029"}}
    assert set(builtin.SPOKEN_HELD_OUT["test"]) >= {"en-029"}
    assert sum(len(ds) for ds in splits.values()) == 2 * len(voices)


def test_spoken_words_through_prepare_data(monkeypatch):
    for name, value in (("SPOKEN_WORDS", WORDS), ("SPOKEN_VOICES", VOICES), ("SPOKEN_RATES", RATES),
                        ("SPOKEN_PITCHES", PITCHES)):
        monkeypatch.setattr(builtin, name, value)
    data = prepare_data(DataArguments(dataset="spoken_words"), seed=2023)
    assert data.modality == "audio" and data.label_names == sorted(WORDS)
    assert sum(len(s) for s in data.splits.values()) == len(WORDS) * len(VOICES) * len(RATES) * len(PITCHES)
    assert data.split["test"]["source"] == "test"  # the held-out accent's clips, not a seeded carve
    assert data.split["validation"]["source"] == "train"  # no validation accent among VOICES: carved with the seed
    assert data.splits["test"].column_names == ["audio", "label"]  # speaker columns stay out of the model's data
    row = data.splits["train"][0]["audio"]
    assert Path(row["path"]).parent.name == data.label_names[data.splits["train"][0]["label"]]


# ---------------------------------------------------------------------------------------------------------------
# debtags and package_sizes

# In file order, not name order; freeciv and civ-data share a synopsis (civ-data, first by name, is kept); xgame's
# Tag and pingus' Description continue on indented lines; the last stanza has no final newline.
FAKE_INDEX = """\
Package: pingus
Installed-Size: 1000
Description: Lemmings-like puzzle game
 Guide the penguins
 .
 home.
Tag: game::puzzle, interface::x11, role::program,
 use::gameplaying

Package: freeciv
Installed-Size: 10
Description: Civilization turn-based strategy game
Tag: game::strategy, interface::x11, role::program, use::gameplaying
\t
Package: civ-data
Installed-Size: 100000
Description: Civilization turn-based strategy game
Tag: game::strategy, role::app-data

Package: libfoo1
Installed-Size: 0
Description: foo library
Tag: role::shared-lib, special::not-yet-tagged

Package: foo-doc
Description: foo documentation

Package: untagged
Installed-Size: 5
Description: a thing nobody tagged
Tag: special::not-yet-tagged

Package: xgame
Installed-Size: 1
Description: Space shooter
Tag: game::arcade, role::program,
 interface::x11,
 use::gameplaying"""
NATIVE_INDEX = "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"


def test_parse_deb822_stanzas_and_continuation_lines():
    stanzas = list(builtin.parse_deb822(FAKE_INDEX))
    assert [s["Package"] for s in stanzas] == ["pingus", "freeciv", "civ-data", "libfoo1", "foo-doc", "untagged",
                                              "xgame"]  # a whitespace-only line ends a stanza too
    assert stanzas[0]["Description"] == "Lemmings-like puzzle game\nGuide the penguins\n.\nhome."
    assert stanzas[-1]["Tag"] == "game::arcade, role::program,\ninterface::x11,\nuse::gameplaying"
    assert "Installed-Size" not in stanzas[4]


def test_debtags_examples():
    texts, tags = builtin.debtags_examples(FAKE_INDEX, min_packages=1)
    assert texts == ["Civilization turn-based strategy game", "foo library", "Lemmings-like puzzle game",
                     "Space shooter"]  # sorted by package; freeciv's twin text, foo-doc and untagged gone
    assert tags == [["game::strategy", "role::app-data"],  # civ-data's tags, not freeciv's
                    ["role::shared-lib"],  # special:: dropped
                    ["game::puzzle", "interface::x11", "role::program", "use::gameplaying"],
                    ["game::arcade", "interface::x11", "role::program", "use::gameplaying"]]  # continuation lines
    # tags on fewer than two packages go, and the packages left with none
    texts, tags = builtin.debtags_examples(FAKE_INDEX, min_packages=2)
    assert texts == ["Lemmings-like puzzle game", "Space shooter"]
    assert tags == [["interface::x11", "role::program", "use::gameplaying"]] * 2


def test_package_size_examples():
    texts, sizes = builtin.package_size_examples(FAKE_INDEX)
    # libfoo1 (0 KiB) and foo-doc (no size) go; freeciv is civ-data's twin
    assert texts == ["Civilization turn-based strategy game", "Lemmings-like puzzle game", "a thing nobody tagged",
                     "Space shooter"]
    assert sizes == pytest.approx([5.0, 3.0, math.log10(5), 0.0])


def test_debtags_need_tag_fields():
    untagged = re.sub(r"^Tag:.*\n( .*\n?)*", "", FAKE_INDEX + "\n", flags=re.MULTILINE)
    assert "Tag:" not in untagged and "Space shooter" in untagged
    with pytest.raises(UserError, match=re.escape('run "apt-get update" (as root)')):
        builtin.debtags_examples(untagged)
    assert len(builtin.package_size_examples(untagged)[0]) == 4


@pytest.mark.parametrize("files", [(), ("deb.debian.org_debian_dists_bookworm-updates_main_binary-amd64_Packages",
                                        "deb.debian.org_debian_dists_bookworm_contrib_binary-amd64_Packages")])
def test_no_package_index_names_apt_get_update(monkeypatch, tmp_path, files):
    for name in files:
        (tmp_path / name).write_text(FAKE_INDEX)
    monkeypatch.setattr(builtin, "APT_LISTS_DIR", tmp_path)
    for name in ("debtags", "package_sizes"):
        with pytest.raises(UserError, match=re.escape('run "apt-get update" (as root) to download Debian\'s package')):
            builtin.load_builtin(name)


def test_the_release_index_of_this_architecture_is_read(monkeypatch, tmp_path):
    monkeypatch.setattr(builtin, "_dpkg_architecture", lambda: "amd64")
    (tmp_path / NATIVE_INDEX).write_text(FAKE_INDEX)  # plain, as apt leaves it without compression
    other = "Package: other\nInstalled-Size: 7\nDescription: not this one\nTag: role::program\n" * 50
    for name in ("deb.debian.org_debian_dists_bookworm-updates_main_binary-amd64_Packages",
                 "deb.debian.org_debian_dists_bookworm_main_binary-arm64_Packages"):
        (tmp_path / name).write_text(other)
    assert builtin.packages_index(tmp_path) == tmp_path / NATIVE_INDEX
    if not Path(builtin.APT_HELPER).is_file():
        pytest.skip("apt-helper is not installed")
    debtags = builtin.load_debtags(tmp_path, min_packages=2)
    assert list(debtags) == ["train"] and debtags["train"].features == {"text": Value("string"),
                                                                         "label": List(Value("string"))}
    texts, tags = builtin.debtags_examples(FAKE_INDEX, min_packages=2)
    assert debtags["train"].to_dict() == {"text": texts, "label": tags} and len(texts) == 2
    sizes = builtin.load_package_sizes(tmp_path)
    assert sizes["train"].features == {"text": Value("string"), "label": Value("float64")}
    texts, labels = builtin.package_size_examples(FAKE_INDEX)
    assert sizes["train"].to_dict() == {"text": texts, "label": labels} and len(texts) == 4


def _has_real_index() -> bool:
    try:
        builtin.packages_index()
    except UserError:
        return False
    return Path(builtin.APT_HELPER).is_file()


real_index = pytest.mark.skipif(not _has_real_index(), reason='no apt package index: run "apt-get update"')


@real_index
def test_real_debtags():
    ds = builtin.load_builtin("debtags")["train"]
    assert len(ds) > 20_000 and len(set(ds["text"])) == len(ds)
    counts = Counter(t for row in ds["label"] for t in row)
    assert 40 <= len(counts) <= 150  # several dozen tags
    assert all(row for row in ds["label"]) and min(counts.values()) >= builtin.DEBTAGS_MIN_PACKAGES
    assert not any(t.startswith("special::") for t in counts)
    assert {"role::program", "interface::commandline", "implemented-in::python"} <= set(counts)


@real_index
def test_real_package_sizes():
    ds = builtin.load_builtin("package_sizes")["train"]
    assert len(ds) > 30_000 and len(set(ds["text"])) == len(ds)
    sizes = np.asarray(ds["label"])
    assert np.isfinite(sizes).all() and 0 <= sizes.min() and sizes.max() < 8  # log10 KiB: under 100 GB
    assert 1.5 < np.median(sizes) < 3.5  # a typical package: tens to thousands of KiB


# ---------------------------------------------------------------------------------------------------------------
# the full sets (make test-slow)


@pytest.mark.slow
def test_full_fashion_mnist_through_prepare_data():
    data = prepare_data(DataArguments(dataset="fashion_mnist"), seed=2023)
    assert [len(data.splits[s]) for s in ("train", "validation", "test")] == [54_000, 6_000, 10_000]
    assert all(row["validation"] == 600 and row["test"] == 1000 for row in data.class_balance)
    image = data.splits["test"][0]["image"]
    assert isinstance(image, Image.Image) and image.size == (28, 28)


@pytest.mark.slow
def test_full_spoken_words_through_prepare_data():
    data = prepare_data(DataArguments(dataset="spoken_words"), seed=2023)
    assert data.modality == "audio" and len(data.label_names) == 16
    assert sum(len(s) for s in data.splits.values()) > 2000
    assert [data.split[s]["source"] for s in ("train", "validation", "test")] == ["train", "validation", "test"]
    audio = data.splits["test"][0]["audio"]
    assert len(load_waveform(audio, 16000)) > 0.3 * 16000

