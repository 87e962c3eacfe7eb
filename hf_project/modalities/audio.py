"""Audio stage: file or bytes -> mono waveform at the model's rate -> crop/pad -> model inputs, on the fly.

Decoding uses soundfile (libsndfile, bundled in its wheel: wav, flac, ogg/vorbis/opus, mp3), so neither
torchcodec nor FFmpeg is needed. `prepare` decodes every clip of every split once, up front: a file that does not
decode stops the run before any training, naming the file, and the decoded mono waveforms (already resampled) stay
in memory for the epochs that follow, so training pays for decoding and resampling once instead of once per epoch.
Past CACHE_BYTES of decoded audio the remaining clips are decoded again when read, so a large dataset costs time,
not memory.

Every clip becomes `max_duration_s` seconds: a random crop on train (drawn from torch's RNG, which the Trainer
seeds, so one seed gives one sequence of crops), a centre crop on validation/test; shorter clips are padded, with
an attention mask marking the real part where the model takes one. Fixed-length inputs make an example's features
independent of whichever clips share its batch, which matters for models without an attention mask (wav2vec2-base
normalises and convolves over padding).

Whisper's encoder takes a fixed 30 s of mel frames; so that short clips do not pay for 30 s of padding, a Whisper
checkpoint is cut to `max_duration_s`: its positional table keeps its first ceil(50 * max_duration_s) rows (models'
`build_model`) and its feature extractor makes twice as many frames (`cut_frames`); the saved model keeps the cut.

Pretrained checkpoints use their own feature extractor (AutoFeatureExtractor); the from-scratch LSTM reads
standardised log-mel frames from LogMelFrontend, whose parameters -- including the per-band statistics learnt from
the training split -- are stored in the model config's `frontend`, so inference rebuilds the same front-end.

Implements hf_project.modalities.ModalityStage through its top-level names.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import datasets
import numpy as np
import soundfile as sf
import torch
from datasets import Dataset, DatasetDict
from scipy.signal import resample_poly
from tqdm.auto import tqdm
from transformers import AutoFeatureExtractor, Wav2Vec2FeatureExtractor, WhisperFeatureExtractor
from transformers.audio_utils import mel_filter_bank

from hf_project.errors import UserError
from hf_project.modalities import files
from hf_project.models import pretrained_config, whisper_positions
from hf_project.models.registry import ModelSpec, hub_error

if TYPE_CHECKING:
    from transformers import FeatureExtractionMixin

    from hf_project.config import ExperimentConfig
    from hf_project.data import PreparedData

logger = logging.getLogger(__name__)

SPLITS_BATCHES = False  # every clip is cut or padded to max_duration_s: nothing to pad
PIPELINE_TAG = "audio-classification"  # the Hugging Face task of an audio classifier: model cards
TRAINER_OPTIONS = {"remove_unused_columns": False}  # the transforms read "row"/"label"/"audio" themselves
INPUT_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aiff", ".aif")
FEATURE = datasets.Audio
CACHE_BYTES = 2 * 2**30  # decoded waveforms kept in memory per prepare()
FIT_CLIPS = 1000  # training clips the LSTM front-end's statistics are estimated from
MAX_LISTED_ERRORS = 3


class UndecodableAudio(ValueError):
    """One clip that soundfile cannot turn into samples; the message is the reason."""


# ---------------------------------------------------------------------------------------------------------------
# decoding


def describe(audio: dict[str, Any], index: int, split: str) -> str:
    """How a clip is named in messages: its file path, or for hub data that carries only bytes its row in the
    dataset's own split (the source of split.json)."""
    return audio.get("path") or f"<audio row {index} of the dataset's {split} split>"


def read_audio(audio: dict[str, Any] | str | Path) -> tuple[np.ndarray, int]:
    """Samples (frames, channels) as float32 and the file's sampling rate, from a path or a {"bytes", "path"} dict."""
    if isinstance(audio, str | Path):
        audio = {"bytes": None, "path": str(audio)}
    if audio.get("bytes"):
        source = io.BytesIO(audio["bytes"])
    elif audio.get("path"):
        source = audio["path"]
        if not Path(source).is_file():
            raise UndecodableAudio("no such file")
        if Path(source).stat().st_size == 0:
            raise UndecodableAudio("empty file")
    else:
        raise UndecodableAudio("no bytes and no path")
    try:
        samples, rate = sf.read(source, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, OSError, ValueError) as err:
        # libsndfile says "Error opening <source>: <reason>"; the caller names the clip itself
        message = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        message = message.rsplit(": ", 1)[-1].rstrip(".")
        if "does not exist" in message or "System error" in message:  # libsndfile's words for a bad mp3 stream
            message = "corrupt or unsupported audio data"
        raise UndecodableAudio(message) from None
    if samples.shape[0] == 0:
        raise UndecodableAudio("no samples")
    if not np.isfinite(samples).all():
        raise UndecodableAudio("non-finite samples")
    return samples, int(rate)


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling (anti-aliased) from `rate` to `target` Hz."""
    if rate == target:
        return wave
    g = math.gcd(rate, target)
    return resample_poly(wave, target // g, rate // g).astype(np.float32)


def load_waveform(audio: dict[str, Any] | str | Path, sampling_rate: int) -> np.ndarray:
    """One clip as a mono float32 waveform at `sampling_rate` (channels averaged)."""
    samples, rate = read_audio(audio)
    return resample(samples.mean(axis=1), rate, sampling_rate)


def decode_split(ds: Dataset, source: dict[str, Any], sampling_rate: int, budget: list[int],
                 progress: tqdm | None = None) -> tuple[dict[int, np.ndarray], list[str], float]:
    """Decode every clip of a split: ({row: waveform} within the byte budget, failures, longest clip in seconds).

    `source` is the split's entry of split.json ({"source": split, "indices": rows}), to name bytes-only clips.
    """
    cache, failures, longest = {}, [], 0.0
    row = 0
    for batch in ds.select_columns(["audio"]).iter(batch_size=64):
        for audio in batch["audio"]:
            try:
                wave = load_waveform(audio, sampling_rate)
            except UndecodableAudio as err:
                failures.append(f"{describe(audio, source['indices'][row], source['source'])} ({err})")
            else:
                longest = max(longest, len(wave) / sampling_rate)
                if budget[0] >= wave.nbytes:
                    cache[row] = wave
                    budget[0] -= wave.nbytes
            row += 1
            if progress is not None:
                progress.update()
    return cache, failures, longest


def undecodable_error(failures: list[str]) -> UserError:
    shown = "; ".join(failures[:MAX_LISTED_ERRORS])
    more = f" and {len(failures) - MAX_LISTED_ERRORS} more" if len(failures) > MAX_LISTED_ERRORS else ""
    noun = "audio file does" if len(failures) == 1 else f"{len(failures)} audio files do"
    return UserError(f"{noun} not decode: {shown}{more}; fix or remove them (readable: wav, flac, ogg, mp3)")


# ---------------------------------------------------------------------------------------------------------------
# cropping (what makes every clip max_duration_s long)


def random_crop(wave: np.ndarray, length: int) -> np.ndarray:
    """A random `length`-sample window (training); shorter clips are returned whole. Draws from torch's RNG."""
    if len(wave) <= length:
        return wave
    start = int(torch.randint(len(wave) - length + 1, ()).item())
    return wave[start : start + length]


def centre_crop(wave: np.ndarray, length: int) -> np.ndarray:
    """The middle `length` samples (evaluation); shorter clips are returned whole and padded later."""
    if len(wave) <= length:
        return wave
    start = (len(wave) - length) // 2
    return wave[start : start + length]


def num_samples(max_duration_s: float, sampling_rate: int) -> int:
    return max(1, round(max_duration_s * sampling_rate))


# ---------------------------------------------------------------------------------------------------------------
# the LSTM's front-end


@dataclass
class LogMelFrontend:
    """Standardised log-mel frames (25 ms Hann windows every 10 ms) for the from-scratch LSTM.

    `mean`/`std` are per mel band, learnt from the training split by `fit`. A modalities.Frontend: `to_frontend()`
    is what the model config's `frontend` holds; `LogMelFrontend.from_frontend(model.config.frontend)` rebuilds it
    for inference.
    """

    sampling_rate: int
    n_mels: int
    max_duration_s: float
    win_length: int
    hop_length: int
    n_fft: int
    f_min: float = 20.0
    f_max: float | None = None  # None: the Nyquist frequency
    log_floor: float = 1e-6
    mean: list[float] | None = None
    std: list[float] | None = None
    _filters: torch.Tensor = field(init=False, repr=False, compare=False)

    @classmethod
    def create(cls, sampling_rate: int, n_mels: int, max_duration_s: float) -> LogMelFrontend:
        win = round(0.025 * sampling_rate)
        return cls(sampling_rate, n_mels, max_duration_s, win_length=win, hop_length=round(0.010 * sampling_rate),
                   n_fft=2 ** math.ceil(math.log2(win)))

    @classmethod
    def from_frontend(cls, values: Mapping[str, Any]) -> LogMelFrontend:
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        return cls(**{k: v for k, v in values.items() if k in names})

    def __post_init__(self) -> None:
        f_max = self.f_max or self.sampling_rate / 2
        filters = mel_filter_bank(num_frequency_bins=self.n_fft // 2 + 1, num_mel_filters=self.n_mels,
                                  min_frequency=self.f_min, max_frequency=f_max, sampling_rate=self.sampling_rate,
                                  norm="slaney", mel_scale="slaney")
        self._filters = torch.from_numpy(filters).float()  # (n_fft // 2 + 1, n_mels)

    def to_frontend(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        return {"modality": "audio", "kind": "log_mel", **values}

    from_dict = from_frontend  # its name before every front-end used to_frontend/from_frontend; kept for old callers

    @property
    def max_samples(self) -> int:
        return num_samples(self.max_duration_s, self.sampling_rate)

    def num_frames(self, samples: int) -> int:
        return 1 + samples // self.hop_length  # centred frames

    def log_mel(self, wave: np.ndarray) -> torch.Tensor:
        """Un-normalised log-mel frames (frames, n_mels) of one mono waveform."""
        window = torch.hann_window(self.win_length)
        # constant (not reflect) padding: clips shorter than half a window still give frames
        spec = torch.stft(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)), self.n_fft,
                          hop_length=self.hop_length, win_length=self.win_length, window=window, center=True,
                          pad_mode="constant", return_complex=True)  # (n_fft // 2 + 1, frames)
        mel = spec.abs().square().T @ self._filters  # (frames, n_mels)
        return torch.log(mel + self.log_floor)

    def fit(self, waves: Iterable[np.ndarray]) -> LogMelFrontend:
        """Per-band mean and std over every frame of `waves` (training clips, centre-cropped as in evaluation)."""
        frames = torch.cat([self.log_mel(centre_crop(w, self.max_samples)) for w in waves])  # (N, n_mels)
        self.mean = frames.mean(0).tolist()
        self.std = frames.std(0).clamp(min=1e-3).tolist()  # a silent band must not blow up
        return self

    def __call__(self, waves: Sequence[np.ndarray]) -> dict[str, list[np.ndarray]]:
        """Right-padded (max frames, n_mels) standardised frames and their (max frames,) mask, per waveform."""
        if self.mean is None or self.std is None:
            raise ValueError("LogMelFrontend.fit must see training audio before features are computed")
        mean, std = torch.tensor(self.mean), torch.tensor(self.std)
        total = self.num_frames(self.max_samples)
        features, masks = [], []
        for wave in waves:
            frames = ((self.log_mel(wave[: self.max_samples]) - mean) / std)[:total]  # (F, n_mels)
            padded = torch.zeros(total, self.n_mels)
            padded[: len(frames)] = frames
            mask = np.zeros(total, dtype=np.int64)
            mask[: len(frames)] = 1
            features.append(padded.numpy())
            masks.append(mask)
        return {"input_features": features, "attention_mask": masks}


# ---------------------------------------------------------------------------------------------------------------
# waveform -> model inputs


def encode(processor: Any, waves: Sequence[np.ndarray], max_duration_s: float) -> dict[str, list[np.ndarray]]:
    """Model inputs of already cropped clips: each padded to max_duration_s, the form every split is fed in."""
    if isinstance(processor, LogMelFrontend):
        return processor(waves)
    rate = processor.sampling_rate
    length = num_samples(max_duration_s, rate)
    if isinstance(processor, Wav2Vec2FeatureExtractor):  # wav2vec2, HuBERT, WavLM, ...: raw samples in
        # Asking for the mask always makes normalisation skip the padding; it is kept only for the models that
        # were trained with one (return_attention_mask in their preprocessor config).
        out = processor(list(waves), sampling_rate=rate, padding="max_length", max_length=length, truncation=True,
                        return_attention_mask=True, return_tensors="np")
        keep = ["input_values", "attention_mask"] if processor.return_attention_mask else ["input_values"]
        return {k: list(out[k]) for k in keep}
    # Spectrogram extractors (AST, Whisper, ...) fix their own frame count; they get zero-padded samples.
    padded = [np.pad(w, (0, length - len(w))) for w in waves]
    # A reloaded Whisper extractor cut to a fractional number of seconds has a float n_samples (see cut_frames)
    options = {"max_length": round(processor.n_samples)} if isinstance(processor, WhisperFeatureExtractor) else {}
    out = processor(padded, sampling_rate=rate, return_tensors="np", **options)
    return {k: list(v) for k, v in out.items()}


class ClipTransform:
    """datasets' on-the-fly transform: rows -> cropped clips -> model inputs + labels."""

    def __init__(self, processor: Any, cache: dict[int, np.ndarray], max_duration_s: float, train: bool) -> None:
        self.processor = processor
        self.cache = cache
        self.max_duration_s = max_duration_s
        self.rate = processor.sampling_rate
        self.crop = random_crop if train else centre_crop

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        length = num_samples(self.max_duration_s, self.rate)
        waves = []
        for j, row in enumerate(batch["row"]):
            wave = self.cache.get(row)
            if wave is None:  # beyond the in-memory budget
                wave = load_waveform(batch["audio"][j], self.rate)
            waves.append(self.crop(wave, length))
        out = encode(self.processor, waves, self.max_duration_s)
        out["labels"] = list(batch["label"])
        return out


# ---------------------------------------------------------------------------------------------------------------
# the stage interface


def cut_frames(extractor: WhisperFeatureExtractor, positions: int) -> None:
    """Make a Whisper extractor pad/crop to the 2 mel frames per position that the cut encoder takes.

    WhisperFeatureExtractor.__init__ recomputes n_samples = chunk_length * sampling_rate when the saved extractor is
    loaded again, so chunk_length stays an int for a whole number of seconds (the reloaded extractor is then exact on
    its own); a fractional one makes n_samples a float, which `encode` rounds back.
    """
    extractor.nb_max_frames = 2 * positions
    extractor.n_samples = extractor.nb_max_frames * extractor.hop_length
    seconds = extractor.n_samples / extractor.sampling_rate
    extractor.chunk_length = int(seconds) if seconds.is_integer() else seconds


def load_folder(root: Path, split_dirs: Mapping[str, Path]) -> DatasetDict:
    """The audiofolder layout as undecoded Audio columns. Built here rather than by datasets' audiofolder builder:
    its Audio encoder imports torchcodec (and so FFmpeg) even to store a file path, while this stage decodes with
    soundfile."""
    found = {}
    for split, split_dir in split_dirs.items():
        classes = sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        found[split] = [(str(f.resolve()), c.name) for c in classes for f in sorted(c.rglob("*"))
                        if f.is_file() and f.suffix.lower() in INPUT_SUFFIXES]
    names = sorted({label for rows in found.values() for _, label in rows})
    features = datasets.Features({"audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
                                  "label": datasets.ClassLabel(names=names)})
    out = {}
    for split, rows in found.items():
        ds = Dataset.from_dict({"audio": [{"bytes": None, "path": path} for path, _ in rows],
                                "label": [names.index(label) for _, label in rows]}, features=features)
        out[split] = ds.cast_column("audio", datasets.Audio(decode=False))
    return DatasetDict(out)


def split_inputs(rows: Dataset, column: str, split: str) -> Dataset:
    return files.split_inputs(rows, column, "audio", FEATURE)


def fit_frontend(data: PreparedData, cfg: ExperimentConfig) -> LogMelFrontend:
    """The LSTM's front-end, its statistics from (up to FIT_CLIPS) training clips only."""
    frontend = LogMelFrontend.create(cfg.data.lstm_sampling_rate, cfg.data.lstm_n_mels, cfg.data.max_duration_s)
    train = data.splits["train"]
    sample = train.select(range(min(FIT_CLIPS, len(train))))  # the seeded split's order: a random sample
    waves, failures = [], []
    for i, audio in enumerate(sample["audio"]):
        try:
            waves.append(load_waveform(audio, frontend.sampling_rate))
        except UndecodableAudio as err:  # skipped here: prepare() reports those of every split at once
            failures.append(f"{describe(audio, data.split['train']['indices'][i], data.split['train']['source'])}"
                            f" ({err})")
    if not waves:
        raise undecodable_error(failures)
    return frontend.fit(waves)


def load_processor(spec: ModelSpec, data: PreparedData, cfg: ExperimentConfig) -> Any:
    """The checkpoint's feature extractor, or for the LSTM a log-mel front-end fitted on training clips only."""
    if spec.from_scratch:
        return fit_frontend(data, cfg)
    config = pretrained_config(spec.checkpoint, "audio")  # another modality's checkpoint: not "no feature extractor"
    try:
        extractor = AutoFeatureExtractor.from_pretrained(spec.checkpoint)
    except (OSError, ValueError) as err:
        raise hub_error(spec.checkpoint, err) from None
    if not isinstance(getattr(extractor, "sampling_rate", None), int):
        raise UserError(f"model {spec.checkpoint!r} has no audio feature extractor (no sampling_rate)")
    positions = whisper_positions(config, cfg.data.max_duration_s, spec.checkpoint)
    if positions is not None and isinstance(extractor, WhisperFeatureExtractor):
        cut_frames(extractor, positions)  # build_model cuts the encoder's positional table to match
    # Saved with the model (preprocessor_config.json): inference crops/pads to the length training used.
    extractor.max_duration_s = cfg.data.max_duration_s
    return extractor


def prepare(data: PreparedData, processor: Any, cfg: ExperimentConfig) -> DatasetDict:
    """Decode (and check) every clip once, then crop and extract features on the fly; random crops on train only."""
    rate = processor.sampling_rate
    budget = [CACHE_BYTES]
    caches, failures, longest = {}, [], 0.0
    with tqdm(total=sum(len(ds) for ds in data.splits.values()), desc=f"decoding audio at {rate} Hz",
              disable=None) as progress:
        for split, ds in data.splits.items():
            caches[split], bad, split_longest = decode_split(ds, data.split[split], rate, budget, progress)
            failures += bad
            longest = max(longest, split_longest)
    if failures:
        raise undecodable_error(failures)
    cached = all(len(caches[s]) == len(ds) for s, ds in data.splits.items())
    if not cached:
        logger.warning("decoded audio exceeds %d MiB: clips past it are decoded again whenever read",
                       CACHE_BYTES // 2**20)
    if longest < cfg.data.max_duration_s:
        logger.info("the longest clip lasts %.2f s: --max_duration_s %.2f would pad less than %.2f s does",
                    longest, math.ceil(longest * 100) / 100, cfg.data.max_duration_s)
    columns = ["row", "label"] + ([] if cached else ["audio"])
    prepared = {}
    for split, ds in data.splits.items():
        transform = ClipTransform(processor, caches[split], cfg.data.max_duration_s, train=split == "train")
        rows = ds.add_column("row", list(range(len(ds))))
        prepared[split] = rows.with_transform(transform, columns=columns)
    return DatasetDict(prepared)


def collate(features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack per-example arrays, right-padding with zeros any that differ in length."""
    batch = {}
    for key in features[0]:
        values = [torch.as_tensor(np.asarray(f[key])) for f in features]
        if key == "labels":
            batch[key] = files.label_tensor(np.stack([v.numpy() for v in values]))
        elif key == "attention_mask":
            batch[key] = torch.nn.utils.rnn.pad_sequence(values, batch_first=True).long()
        else:
            batch[key] = torch.nn.utils.rnn.pad_sequence(values, batch_first=True).float()
    return batch


def input_facts(prepared: DatasetDict, cfg: ExperimentConfig) -> dict[str, Any]:
    return {}  # every clip is cut or padded to max_duration_s: no length facts


def collator(processor: Any) -> Any:
    return collate


def lstm_inputs(processor: Any, cfg: ExperimentConfig) -> dict[str, Any]:
    if not isinstance(processor, LogMelFrontend):
        return {}  # only the from-scratch LSTM reads these
    return {"input_type": "features", "input_dim": processor.n_mels, "frontend": processor.to_frontend()}


def describe_split(ds: Dataset) -> list[str]:
    return files.describe_split(ds, "audio")


def raw_inputs(ds: Dataset) -> list[Any]:
    return list(ds["audio"])


def display_values(values: list[Any]) -> list[np.ndarray]:
    """Mono waveforms at plots.SPECTROGRAM_RATE: every clip drawn at one rate, so the panels' mel axes agree."""
    from hf_project.plots import SPECTROGRAM_RATE

    return [load_waveform(v, SPECTROGRAM_RATE) for v in values]


# ---------------------------------------------------------------------------------------------------------------
# inference


def frontend_of(model_config: Any, processor: FeatureExtractionMixin | None = None,
                where: str = "this model folder") -> Any:
    """What turns audio into a saved model's inputs: its feature extractor, or the LSTM's rebuilt front-end."""
    frontend = getattr(model_config, "frontend", None)
    if isinstance(frontend, dict) and frontend.get("kind") == "log_mel":
        return LogMelFrontend.from_frontend(frontend)
    if processor is None:
        raise UserError(f"{where} has no feature extractor (preprocessor_config.json) and no front-end")
    # AutoProcessor gives Whisper's folders a WhisperProcessor (feature extractor + tokenizer, an empty one when the
    # folder has none); classification reads only the audio half.
    return getattr(processor, "feature_extractor", processor)


def saved_processor(model_config: Any, processor: Any, where: str) -> Any:
    return frontend_of(model_config, processor, where)


def input_settings(run_config: Mapping[str, Any], model_config: Any, processor: Any, where: str) -> dict[str, Any]:
    """max_duration_s: the run's, else the one saved with the feature extractor (or the LSTM's front-end)."""
    duration = run_config.get("max_duration_s") or getattr(processor, "max_duration_s", None)
    if duration is None:
        raise UserError(f"{where} does not record the clip length it was trained on: load it from its run directory "
                        "(runs/<dataset>/<model>/<run>), whose config.yaml has max_duration_s")
    return {"max_duration_s": duration}


def read_inputs(path: Path, column: str) -> list[str]:
    return files.read_files(path, "audio", INPUT_SUFFIXES)


def check_inputs(inputs: Sequence[Any]) -> None:
    files.check_files(inputs, "audio")


def encode_inputs(inputs: Sequence[Any], processor: Any, settings: Mapping[str, Any]) -> list[Any]:
    return list(inputs)  # decoded a batch at a time (collate_inputs): memory stays bounded


def batch_order(encoded: Sequence[Any]) -> None:
    return None  # every clip is cropped or padded to one length


def collate_inputs(clips: Sequence[Any], processor: Any, settings: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    return inputs_for(list(clips), processor, settings.get("max_duration_s"))


def describe_input(value: Any) -> str:
    return files.describe_file(value)


def inputs_for(clips: Sequence[dict[str, Any] | str | Path], processor: Any,
               max_duration_s: float | None = None) -> dict[str, torch.Tensor]:
    """A batch of model inputs for audio files or {"bytes", "path"} dicts, cropped and padded as in evaluation."""
    duration = max_duration_s or getattr(processor, "max_duration_s", None)
    if duration is None:
        raise ValueError("max_duration_s is needed: the processor does not record the length training used")
    rate = processor.sampling_rate
    waves = []
    for i, clip in enumerate(clips):
        try:
            waves.append(centre_crop(load_waveform(clip, rate), num_samples(duration, rate)))
        except UndecodableAudio as err:
            name = str(clip) if isinstance(clip, str | Path) else (clip.get("path") or f"<clip {i}>")
            raise UserError(f"audio file {name} does not decode ({err}): fix or remove it") from None
    encoded = encode(processor, waves, duration)
    return collate([{k: v[i] for k, v in encoded.items()} for i in range(len(waves))])
