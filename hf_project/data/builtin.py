"""Builtin offline datasets: real data that needs no hub.

    fortunes       text   Debian's fortune cookies, one class per cookie file
    fortune_pairs  text   pairs of those cookies, labelled same file or different (a sentence-pair task)
    debtags        text   Debian packages' one-line descriptions and their debtags (multi-label), from apt's index
    package_sizes  text   the same descriptions and log10 of the package's installed size in KiB (regression)
    digits         image  scikit-learn's 8x8 handwritten digits
    fashion_mnist  image  Zalando's Fashion-MNIST from Debian's dataset-fashion-mnist, its own train/test splits
    spoken_words   audio  command words spoken by espeak-ng in several accents, voices, rates and pitches

The last two are derived once into the cache root (<cache>/builtin/<name>-<key>/), keyed by what they are made
from, and written into a temporary folder that is renamed into place, so an interrupted build leaves nothing a
later run would mistake for a finished one.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Image, List, Value, load_from_disk
from tqdm.auto import tqdm

from hf_project.cache import build_once, default_cache_dir, file_sha256
from hf_project.errors import UserError

logger = logging.getLogger(__name__)

FORTUNE_PACKAGES = ("fortunes", "fortunes-min")
BUILTIN_DATASETS = ("fortunes", "fortune_pairs", "debtags", "package_sizes", "digits", "fashion_mnist",
                    "spoken_words")
FORTUNE_PAIRS_SEED = 0  # part of fortune_pairs' definition: the same pairs on every machine


def fortune_files(packages: tuple[str, ...] = FORTUNE_PACKAGES) -> list[Path]:
    """Cookie files owned by the given Debian packages only, so other fortune packages cannot leak in.

    A cookie file is a regular file with a `.dat` index beside it; the `.u8` names are symlinks to the same
    files and are skipped so no cookie is counted twice.
    """
    if shutil.which("dpkg") is None:
        raise UserError("builtin dataset 'fortunes' needs Debian's dpkg and the fortunes package: use a Debian machine")
    proc = subprocess.run(["dpkg", "-L", *packages], capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(
            "builtin dataset 'fortunes' needs the Debian package fortunes: run `sudo apt-get install -y fortunes`"
        )
    files = []
    for line in proc.stdout.splitlines():
        path = Path(line)
        if path.suffix or path.is_symlink() or not path.is_file():
            continue
        if Path(f"{path}.dat").is_file():
            files.append(path)
    if not files:
        raise UserError("the fortunes package has no cookie files: run `apt-get install --reinstall fortunes`")
    return sorted(set(files))


def parse_cookies(path: Path) -> list[str]:
    """One text per cookie; cookies are separated by lines holding a single '%'."""
    cookies, current = [], []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.strip() == "%":
            cookies.append("\n".join(current).strip())
            current = []
        else:
            current.append(line.rstrip())
    cookies.append("\n".join(current).strip())
    return [c for c in cookies if c]


def load_fortunes() -> DatasetDict:
    files = fortune_files()
    names = sorted(f.name for f in files)
    texts, labels = [], []
    for path in files:
        cookies = parse_cookies(path)
        texts.extend(cookies)
        labels.extend([names.index(path.name)] * len(cookies))
    features = Features({"text": Value("string"), "label": ClassLabel(names=names)})
    logger.info("builtin fortunes: %d cookies in %d categories", len(texts), len(names))
    return DatasetDict({"train": Dataset.from_dict({"text": texts, "label": labels}, features=features)})


def load_fortune_pairs() -> DatasetDict:
    """A real sentence-pair task from the fortunes: each cookie, in file order, paired with a second cookie drawn
    with a fixed seed from the same file (label `same`) or from another file (`different`), half and half. Pair
    columns `text` and `text_pair` (train with --text_pair_column text_pair)."""
    fortunes = load_fortunes()["train"]
    names = fortunes.features["label"].names
    texts, labels = list(fortunes["text"]), list(fortunes["label"])
    by_label: dict[int, list[int]] = {}
    for i, k in enumerate(labels):
        by_label.setdefault(k, []).append(i)
    rng = np.random.default_rng(FORTUNE_PAIRS_SEED)
    firsts, seconds, same = [], [], []
    for i, k in enumerate(labels):
        wanted_same = bool(rng.random() < 0.5) and len(by_label[k]) > 1
        if wanted_same:
            j = i
            while j == i:
                j = by_label[k][int(rng.integers(len(by_label[k])))]
        else:
            other = [c for c in by_label if c != k][int(rng.integers(len(by_label) - 1))]
            j = by_label[other][int(rng.integers(len(by_label[other])))]
        firsts.append(texts[i])
        seconds.append(texts[j])
        same.append(0 if wanted_same else 1)
    features = Features({"text": Value("string"), "text_pair": Value("string"),
                         "label": ClassLabel(names=["same", "different"])})
    logger.info("builtin fortune_pairs: %d cookie pairs from %d categories, %d of the same category", len(firsts),
                len(names), same.count(0))
    return DatasetDict({"train": Dataset.from_dict({"text": firsts, "text_pair": seconds, "label": same},
                                                   features=features)})


# ---------------------------------------------------------------------------------------------------------------
# debtags and package_sizes: Debian's package index as apt downloads it (apt-get update)

APT_LISTS_DIR = Path("/var/lib/apt/lists")
APT_HELPER = "/usr/lib/apt/apt-helper"  # its cat-file reads the index whatever its compression (lz4, xz, gz, none)
# `<mirror path>_dists_<suite>_main_binary-<arch>_Packages[.<compression>]`; a suite with a '-' is an overlay of the
# release (bookworm-updates, bookworm-security) holding only the packages changed since, so it is not matched.
PACKAGES_INDEX = re.compile(r"_dists_(?P<suite>[^_-]+)_main_binary-(?P<arch>[^_]+)_Packages(\.[A-Za-z0-9]+)?$")
# A tag on fewer packages is too rare to learn or to score. On Debian 12 (bookworm, amd64) 200 keeps 72 of the
# index's 598 tags, from 18 facets (role, use, works-with, devel, implemented-in, suite, interface, ...); 100 keeps
# 135, 400 keeps 38.
DEBTAGS_MIN_PACKAGES = 200
_APT_UPDATE = 'run "apt-get update" (as root) to download Debian\'s package index'


def _dpkg_architecture() -> str | None:
    if shutil.which("dpkg") is None:
        return None
    proc = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=False)
    return proc.stdout.strip() or None


def packages_index(lists_dir: Path | None = None) -> Path:
    """The main archive's Packages index of this machine's architecture among apt's downloaded lists.

    Of several mirrors (or a third-party repository that also names its component `main`) the largest file is
    taken: Debian's main archive is by far the largest index.
    """
    lists_dir = lists_dir or APT_LISTS_DIR
    found = sorted(p for p in lists_dir.glob("*_Packages*") if PACKAGES_INDEX.search(p.name) and p.is_file())
    if not found:
        raise UserError(f"no Debian package index of the main archive in {lists_dir}: {_APT_UPDATE}")
    arch = _dpkg_architecture()
    native = [p for p in found if PACKAGES_INDEX.search(p.name)["arch"] == arch]
    return max(native or found, key=lambda p: p.stat().st_size)


def read_packages_index(path: Path) -> str:
    if not Path(APT_HELPER).is_file():
        raise UserError(f"reading {path} needs apt's {APT_HELPER}: use a Debian machine with apt")
    proc = subprocess.run([APT_HELPER, "cat-file", str(path)], capture_output=True, check=False)
    if proc.returncode != 0:
        raise UserError(f"apt-helper cannot read {path} ({proc.stderr.decode(errors='replace').strip()}): "
                        f"{_APT_UPDATE}")
    return proc.stdout.decode("utf-8", errors="replace")


def parse_deb822(text: str) -> Iterator[dict[str, str]]:
    """The stanzas of a deb822 file (an apt Packages index) as {field: value}, in file order.

    Stanzas are separated by blank lines; a line starting with a space or tab continues the field before it and
    is kept on its own line of the value, without its leading whitespace.
    """
    fields: dict[str, str] = {}
    name = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, name = {}, None
        elif line[0] in " \t":
            if name is not None:
                fields[name] += "\n" + line.strip()
        else:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    if fields:
        yield fields


def _packages_by_name(text: str) -> list[dict[str, str]]:
    """Packages with a description, sorted by name (stably), so which of two equal descriptions is kept does not
    depend on the mirror's order."""
    stanzas = [s for s in parse_deb822(text) if "Package" in s and s.get("Description", "").strip()]
    return sorted(stanzas, key=lambda s: s["Package"])


def _synopsis(stanza: dict[str, str]) -> str:
    """The Description field's first line, the one-line synopsis; the package's name is not part of the text."""
    return stanza["Description"].split("\n", 1)[0].strip()


def _first_per_text(rows: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The first row of each text: packages share synopses (a compiler's cross builds for each architecture,
    "transitional package"), and a twin in test of a train row would score memory, not learning. On Debian 12
    63,440 entries have 59,912 distinct synopses."""
    seen: set[str] = set()
    kept = []
    for text, label in rows:
        if text not in seen:
            seen.add(text)
            kept.append((text, label))
    return kept


def debtags_examples(text: str, min_packages: int = DEBTAGS_MIN_PACKAGES) -> tuple[list[str], list[list[str]]]:
    """(synopses, their sorted debtags) from a Packages index.

    Tags of the `special::` facet (bookkeeping such as special::not-yet-tagged) are dropped, packages left with no
    tag go, duplicate synopses keep their first package by name, then tags on fewer than `min_packages` of the
    remaining packages are dropped, and with them the packages left with no tag. So every tag kept labels at least
    `min_packages` examples.
    """
    rows = []
    for stanza in _packages_by_name(text):
        tags = {t.strip() for t in stanza.get("Tag", "").replace("\n", " ").split(",")}
        tags = sorted(t for t in tags if t and not t.startswith("special::"))
        if tags:
            rows.append((_synopsis(stanza), tags))
    if not rows:
        raise UserError(f"the Debian package index has no packages with debtags (no Tag fields): {_APT_UPDATE}")
    rows = _first_per_text(rows)
    counts = Counter(t for _, tags in rows for t in tags)
    kept = []
    for synopsis, tags in rows:
        tags = [t for t in tags if counts[t] >= min_packages]
        if tags:
            kept.append((synopsis, tags))
    return [synopsis for synopsis, _ in kept], [tags for _, tags in kept]


def package_size_examples(text: str) -> tuple[list[str], list[float]]:
    """(synopses, log10 of Installed-Size in KiB) from a Packages index; packages without a positive size go (the
    cross-compilation libraries of Architecture: all leave it out), and duplicate synopses keep their first package
    by name. Sizes span from a few KiB to gigabytes, so the log is what a squared error can fit."""
    rows = []
    for stanza in _packages_by_name(text):
        size = stanza.get("Installed-Size", "")
        if size.isdigit() and int(size) > 0:
            rows.append((_synopsis(stanza), math.log10(int(size))))
    rows = _first_per_text(rows)
    return [synopsis for synopsis, _ in rows], [size for _, size in rows]


def load_debtags(lists_dir: Path | None = None, min_packages: int = DEBTAGS_MIN_PACKAGES) -> DatasetDict:
    """Multi-label: each package's one-line description, labelled with its debtags (a list of strings).

    From Debian 12's (bookworm, amd64) main archive: 30,303 of its 63,440 package entries have debtags (none of the
    special:: facet); 28,507 distinct descriptions remain with 72 tags (DEBTAGS_MIN_PACKAGES = 200), from 201
    (use::analysing) to 9,483 (devel::library) descriptions each; 1 to 20 tags per description, 3.04 on average
    (median 2), and a third of the descriptions have a single tag.
    """
    synopses, tags = debtags_examples(read_packages_index(packages_index(lists_dir)), min_packages)
    features = Features({"text": Value("string"), "label": List(Value("string"))})
    logger.info("builtin debtags: %d package descriptions with %d debtags", len(synopses),
                len({t for row in tags for t in row}))
    return DatasetDict({"train": Dataset.from_dict({"text": synopses, "label": tags}, features=features)})


def load_package_sizes(lists_dir: Path | None = None) -> DatasetDict:
    """Regression: each package's one-line description, labelled with log10 of its installed size in KiB.

    From Debian 12's (bookworm, amd64) main archive: 63,314 of its 63,440 package entries have a size; 59,890 distinct
    descriptions remain, labels from 0.30 to 6.75 (2 KiB to 5.4 GiB), mean 2.47, median 2.33, standard deviation
    0.88.
    """
    synopses, sizes = package_size_examples(read_packages_index(packages_index(lists_dir)))
    features = Features({"text": Value("string"), "label": Value("float64")})
    logger.info("builtin package_sizes: %d package descriptions, log10 KiB from %.2f to %.2f", len(synopses),
                min(sizes, default=math.nan), max(sizes, default=math.nan))
    return DatasetDict({"train": Dataset.from_dict({"text": synopses, "label": sizes}, features=features)})


def load_digits() -> DatasetDict:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, offline) as greyscale PIL images."""
    from PIL import Image as PILImage
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    # Pixel values are 0..16; scale to the 0..255 of an 8-bit greyscale image.
    images = [PILImage.fromarray((img * 255 / 16).round().astype(np.uint8)) for img in bunch.images]
    features = Features({"image": Image(), "label": ClassLabel(names=[str(d) for d in range(10)])})
    train = Dataset.from_dict({"image": images, "label": bunch.target.tolist()}, features=features)
    return DatasetDict({"train": train})


# ---------------------------------------------------------------------------------------------------------------
# fashion_mnist

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # where Debian's dataset-fashion-mnist puts it
FASHION_MNIST_VERSION = 1  # bump when the cached Arrow layout changes
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60_000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10_000),
}
FASHION_MNIST_LABELS = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_REINSTALL_FASHION = "run `sudo apt-get install --reinstall -y dataset-fashion-mnist`"


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format, gzipped) of unsigned bytes as an array of its declared shape.

    Header: two zero bytes, the type code 0x08 (unsigned byte), the number of dimensions, then each dimension as a
    big-endian uint32; the values follow in C order.
    """
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise UserError(f"{path} is not a readable gzip file ({err}): {_REINSTALL_FASHION}") from None
    if len(data) < 4 or data[:3] != b"\0\0\x08" or data[3] == 0:
        raise UserError(f"{path} is not an IDX file of unsigned bytes (magic {data[:4].hex()}): {_REINSTALL_FASHION}")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data[4:header], dtype=">u4"))
    values = np.frombuffer(data, dtype=np.uint8, offset=min(header, len(data)))
    if len(shape) != ndim or values.size != int(np.prod(shape)):
        raise UserError(f"{path} holds {values.size} values, its header says shape {shape}: {_REINSTALL_FASHION}")
    return values.reshape(shape)


def fashion_mnist_sources(root: Path | None = None) -> dict[str, tuple[Path, Path]]:
    """{split: (images file, labels file)} of the Debian package."""
    root = root or FASHION_MNIST_DIR
    sources = {split: (root / images, root / labels) for split, (images, labels, _) in FASHION_MNIST_FILES.items()}
    if not all(path.is_file() for pair in sources.values() for path in pair):
        raise UserError("builtin dataset 'fashion_mnist' needs the Debian package dataset-fashion-mnist: "
                        "run `sudo apt-get install -y dataset-fashion-mnist`")
    return sources


def fashion_mnist_arrays(root: Path | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{split: (images (N, 28, 28) uint8, labels (N,) uint8)} read from the Debian package's IDX files."""
    out = {}
    for split, (image_file, label_file) in fashion_mnist_sources(root).items():
        n = FASHION_MNIST_FILES[split][2]
        images, labels = read_idx(image_file), read_idx(label_file)
        if images.shape != (n, 28, 28) or labels.shape != (n,) or labels.max() >= len(FASHION_MNIST_LABELS):
            raise UserError(f"fashion_mnist {split}: images {images.shape} and labels {labels.shape} with values up "
                            f"to {labels.max()}, expected ({n}, 28, 28), ({n},) and 0..9: {_REINSTALL_FASHION}")
        out[split] = images, labels
    return out


def _png(image: np.ndarray) -> bytes:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _fashion_mnist_splits(root: Path) -> DatasetDict:
    """Every image encoded as PNG bytes once (so the Arrow table holds them as they are, no PIL objects pass
    through datasets' per-row encoder)."""
    arrays = fashion_mnist_arrays(root)
    features = Features({"image": Image(), "label": ClassLabel(names=list(FASHION_MNIST_LABELS))})
    total = sum(len(labels) for _, labels in arrays.values())
    splits = {}
    with tqdm(total=total, desc="fashion_mnist: encoding images", unit="img") as bar:
        for split, (images, labels) in arrays.items():
            column = []
            for image in images:
                column.append({"bytes": _png(image), "path": None})
                bar.update()
            splits[split] = Dataset.from_dict({"image": column, "label": labels.tolist()}, features=features)
    return DatasetDict(splits)


def load_fashion_mnist(root: Path | None = None, cache_dir: Path | None = None) -> DatasetDict:
    """Fashion-MNIST's train (60,000) and test (10,000) splits: 28x28 greyscale images and 10 clothing classes.

    The Arrow copy lives under the cache root, keyed by the source files' sha256; it is read into memory so that
    nothing later writes datasets' cache files into the shared folder.
    """
    sources = fashion_mnist_sources(root)
    hashes = {split: [file_sha256(path) for path in pair] for split, pair in sources.items()}
    key = hashlib.sha256(json.dumps([FASHION_MNIST_VERSION, hashes], sort_keys=True).encode())
    final = (cache_dir or default_cache_dir()) / "builtin" / f"fashion_mnist-{key.hexdigest()[:16]}"
    if not final.is_dir():
        logger.info("builtin fashion_mnist: building the Arrow copy in %s (once)", final)
    build_once(final, lambda tmp: _fashion_mnist_splits(root).save_to_disk(str(tmp)))
    loaded = load_from_disk(str(final), keep_in_memory=True)
    logger.info("builtin fashion_mnist: train %d, test %d images", len(loaded["train"]), len(loaded["test"]))
    return loaded


# ---------------------------------------------------------------------------------------------------------------
# spoken_words

# Command words, with a few pairs that share sounds (go/no, on/off, five/nine, up/stop, three/zero) so the task is
# not trivial; each word has a distinct pronunciation.
SPOKEN_WORDS = ("yes", "no", "go", "stop", "up", "down", "left", "right", "on", "off",
                "one", "two", "three", "five", "nine", "zero")
# espeak-ng's own English accents (its MBROLA voices need extra packages), each with its default male voice and two
# of its variants, for 21 voices in all. British English is "en", not "en-gb": espeak-ng 1.51 silently drops the
# variant of "en-gb+f2". en-us-nyc is left out: most of its words are byte for byte those of en-us.
SPOKEN_ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
SPOKEN_VARIANTS = ("", "+f2", "+m3")
SPOKEN_VOICES = tuple(accent + variant for accent in SPOKEN_ACCENTS for variant in SPOKEN_VARIANTS)
SPOKEN_RATES = (130, 175, 220)  # words per minute; espeak-ng's default is 175
SPOKEN_PITCHES = (35, 65)  # 0..99; espeak-ng's default is 50
# Speaker-independent evaluation: whole accents (all their voices, rates and pitches) are held out, so the scores
# say how well a model recognises words from speakers it never heard, not how well it remembers a voice. With a
# random split both demo models scored 1.0 on test.
SPOKEN_HELD_OUT = {"validation": ("en-gb-x-gbcwmd",), "test": ("en-029", "en-gb-scotland")}
SPOKEN_WORDS_VERSION = 1  # bump when the file layout or the manifest changes
MANIFEST = "manifest.json"


def espeak_version() -> str:
    """espeak-ng's version line without its data path, which differs between machines but not in sound."""
    if shutil.which("espeak-ng") is None:
        raise UserError("builtin dataset 'spoken_words' needs espeak-ng: run `sudo apt-get install -y espeak-ng`")
    proc = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.split("Data at")[0].strip()


def check_voices(voices: Sequence[str]) -> None:
    """espeak-ng falls back to its default voice for a name it does not know, silently: that would mislabel every
    clip's speaker, so each language and variant is looked up first."""
    def listing(kind: str) -> list[str]:
        proc = subprocess.run(["espeak-ng", f"--voices={kind}"], capture_output=True, text=True, check=False)
        return proc.stdout.splitlines()[1:]

    # "Pty Language Age/Gender VoiceName File Other-Languages", the last as "(en 2)(en-gb 3)"
    languages = {line.split()[1] for line in listing("en") if len(line.split()) > 1}
    languages |= {name for line in listing("en") for name in re.findall(r"\(([\w-]+) \d+\)", line)}
    variants = {line.split()[4].removeprefix("!v/") for line in listing("variant") if len(line.split()) > 4}
    for voice in voices:
        language, _, variant = voice.partition("+")
        if language not in languages or (variant and variant not in variants):
            raise UserError(f"espeak-ng here has no English voice {voice!r}: see `espeak-ng --voices=en` and "
                            "`espeak-ng --voices=variant`")


def clip_name(word: str, voice: str, rate: int, pitch: int) -> str:
    return f"{word}/{voice.replace('+', '_')}-s{rate}-p{pitch}.wav"


def spoken_words_key(words: Sequence[str], voices: Sequence[str], rates: Sequence[int],
                     pitches: Sequence[int]) -> str:
    spec = [SPOKEN_WORDS_VERSION, espeak_version(), list(words), list(voices), list(rates), list(pitches)]
    return hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:16]


def _speak(out_dir: Path, clip: dict[str, Any]) -> None:
    path = out_dir / clip["file"]
    cmd = ["espeak-ng", "-v", clip["voice"], "-s", str(clip["rate"]), "-p", str(clip["pitch"]), "-w", str(path),
           clip["word"]]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
    if proc.returncode != 0 or not path.is_file() or path.stat().st_size <= 44:  # 44: a WAV header, no samples
        raise UserError(f"espeak-ng failed on {' '.join(cmd)}: {proc.stderr.strip() or 'no audio written'}")


def _drop_duplicates(out_dir: Path, clips: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Some accents say some words exactly alike; a second copy could land in the test split beside its twin in
    train, so only the first (in manifest order) is kept."""
    first: dict[str, str] = {}
    kept, dropped = [], []
    for clip in clips:
        digest = file_sha256(out_dir / clip["file"])
        if digest in first:
            (out_dir / clip["file"]).unlink()
            dropped.append({"file": clip["file"], "same_as": first[digest]})
        else:
            first[digest] = clip["file"]
            kept.append(clip)
    return kept, dropped


def generate_spoken_words(out_dir: Path, words: Sequence[str] = SPOKEN_WORDS, voices: Sequence[str] = SPOKEN_VOICES,
                          rates: Sequence[int] = SPOKEN_RATES, pitches: Sequence[int] = SPOKEN_PITCHES,
                          workers: int | None = None) -> list[dict[str, Any]]:
    """One WAV per (word, voice, rate, pitch) as espeak-ng writes it (22050 Hz mono 16-bit), in
    `out_dir/<word>/<voice>-s<rate>-p<pitch>.wav`, plus a manifest; returns the manifest's clips. Exact
    duplicates are dropped (listed in the manifest).

    Each clip is its own espeak-ng process with fixed settings, so the bytes do not depend on `workers`.
    """
    if len(set(words)) != len(words) or not all(w.isascii() and w.isalpha() for w in words):
        raise UserError(f"spoken words must be distinct plain ascii words, got {list(words)}")
    if not all(80 <= r <= 450 for r in rates) or not all(0 <= p <= 99 for p in pitches):
        # espeak-ng clamps values outside these ranges silently, which would make two "speakers" one
        raise UserError(f"espeak-ng rates are 80..450 and pitches 0..99, got {list(rates)} and {list(pitches)}")
    version = espeak_version()
    check_voices(voices)
    clips = [{"file": clip_name(w, v, r, p), "word": w, "voice": v, "rate": r, "pitch": p}
             for w in words for v in voices for r in rates for p in pitches]
    for word in words:
        (out_dir / word).mkdir(parents=True, exist_ok=True)
    workers = workers or min(8, os.cpu_count() or 1)
    bar = tqdm(total=len(clips), desc="spoken_words: espeak-ng", unit="clip")
    with ThreadPoolExecutor(workers) as pool, bar:
        for _ in pool.map(lambda clip: _speak(out_dir, clip), clips):
            bar.update()
    clips, duplicates = _drop_duplicates(out_dir, clips)
    rate = sf.info(str(out_dir / clips[0]["file"])).samplerate if clips else None
    manifest = {"version": SPOKEN_WORDS_VERSION, "espeak_ng": version, "sampling_rate": rate, "clips": clips,
                "dropped_duplicates": duplicates}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return clips


def spoken_words_dir(words: Sequence[str], voices: Sequence[str], rates: Sequence[int], pitches: Sequence[int],
                     cache_dir: Path | None = None) -> Path:
    """The generated clips' folder under the cache root, made once."""
    key = spoken_words_key(words, voices, rates, pitches)
    final = (cache_dir or default_cache_dir()) / "builtin" / f"spoken_words-{key}"
    if not final.is_dir():
        logger.info("builtin spoken_words: generating %d clips with espeak-ng into %s (once)",
                    len(words) * len(voices) * len(rates) * len(pitches), final)
    return build_once(final, lambda tmp: generate_spoken_words(tmp, words, voices, rates, pitches))


def load_spoken_words(words: Sequence[str] | None = None, voices: Sequence[str] | None = None,
                      rates: Sequence[int] | None = None, pitches: Sequence[int] | None = None,
                      cache_dir: Path | None = None) -> DatasetDict:
    """Train, validation and test splits by accent (SPOKEN_HELD_OUT; a split whose accents are not among `voices`
    is left out, and the project carves it with the seed): an undecoded `audio` column (paths of the cached WAVs),
    the word as `label`, and the speaker's `voice`, `rate` and `pitch`."""
    words, voices = words or SPOKEN_WORDS, voices or SPOKEN_VOICES
    rates, pitches = rates or SPOKEN_RATES, pitches or SPOKEN_PITCHES
    root = spoken_words_dir(words, voices, rates, pitches, cache_dir)
    clips = json.loads((root / MANIFEST).read_text())["clips"]
    names = sorted(words)  # sorted like an audio folder's class sub-folders, which the clips' folder also is
    features = Features({"audio": {"bytes": Value("binary"), "path": Value("string")}, "label": ClassLabel(names=names),
                         "voice": Value("string"), "rate": Value("int32"), "pitch": Value("int32")})
    columns = {
        "audio": [{"bytes": None, "path": str((root / c["file"]).resolve())} for c in clips],
        "label": [names.index(c["word"]) for c in clips],
        **{column: [c[column] for c in clips] for column in ("voice", "rate", "pitch")},
    }
    # Built as a plain struct and then cast: datasets' Audio encoder imports torchcodec even to store a path.
    every = Dataset.from_dict(columns, features=features).cast_column("audio", Audio(decode=False))
    held_out = {voice.split("+")[0]: split for split, accents in SPOKEN_HELD_OUT.items() for voice in accents}
    rows: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for i, clip in enumerate(clips):
        rows[held_out.get(clip["voice"].split("+")[0], "train")].append(i)
    splits = DatasetDict({split: every.select(indices) for split, indices in rows.items() if indices})
    logger.info("builtin spoken_words: %d clips of %d words by %d voices; %s", len(every), len(names), len(voices),
                ", ".join(f"{split} {len(ds)}" for split, ds in splits.items()))
    return splits


def load_builtin(name: str) -> DatasetDict:
    if name == "fortunes":
        return load_fortunes()
    if name == "fortune_pairs":
        return load_fortune_pairs()
    if name == "debtags":
        return load_debtags()
    if name == "package_sizes":
        return load_package_sizes()
    if name == "digits":
        return load_digits()
    if name == "fashion_mnist":
        return load_fashion_mnist()
    if name == "spoken_words":
        return load_spoken_words()
    raise UserError(f"unknown builtin dataset {name!r}: valid ones are {', '.join(BUILTIN_DATASETS)}")
