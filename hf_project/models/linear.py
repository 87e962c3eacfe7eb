"""The linear text baseline: TF-IDF features and one linear layer, fitted by scikit-learn (hf_project.baselines).

    logits = tfidf(text) @ coef.T + intercept          # (N, F) @ (F, K) + (K,)

The logits mean what a neural head's mean: a softmax over the classes (single-label), a sigmoid per label
(multi-label) or the standardised target (regression), so the task objects of hf_project.tasks turn them into
probabilities, predictions and scores exactly as they do for the other models.

Saved without pickle, so a model folder is as safe to load as a safetensors checkpoint: LINEAR_CONFIG (JSON: the
vectoriser's settings and vocabulary, the labels, the task's settings, the regularisation chosen on validation) and
LINEAR_WEIGHTS (safetensors: idf, coef, intercept).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file
from sklearn.feature_extraction.text import TfidfVectorizer

from hf_project import runs
from hf_project.errors import UserError
from hf_project.tasks import Task, task_of_model

MODEL_TYPE = "tfidf_lr"
LINEAR_CONFIG = "linear_model.json"  # in the run's model/ folder and weights/<dataset>/<model>/
LINEAR_WEIGHTS = "model.safetensors"
# Word unigrams and bigrams, sublinear tf (1 + log tf), words seen in at least two training texts, and at most
# MAX_FEATURES of them (the most frequent), so fitting stays fast on any data set. What transform() needs is saved.
VECTORIZER = {"ngram_range": (1, 2), "sublinear_tf": True, "min_df": 2, "max_features": 50_000, "lowercase": True,
              "token_pattern": r"(?u)\b\w\w+\b", "norm": "l2", "use_idf": True, "smooth_idf": True}
TRANSFORM_SETTINGS = ("ngram_range", "sublinear_tf", "lowercase", "token_pattern", "norm", "use_idf", "smooth_idf")


def fit_vectorizer(texts: list[str]) -> TfidfVectorizer:
    """VECTORIZER fitted on the training texts only, so no word of validation or test leaks into its vocabulary or
    idf. A training set too small for min_df 2 falls back to every word; one with no words at all is the user's."""
    for min_df in (VECTORIZER["min_df"], 1):
        vectorizer = TfidfVectorizer(**{**VECTORIZER, "min_df": min_df}, dtype=np.float64)
        try:
            vectorizer.fit(texts)
            return vectorizer
        except ValueError:  # "After pruning, no terms remain" / "empty vocabulary"
            continue
    raise UserError("the training texts hold no word of two or more letters: TF-IDF has nothing to count; use lstm "
                    "or a pretrained model on this data")


@dataclass
class LinearTextModel:
    """A fitted vectoriser and the linear layer on its features; `settings` are the task's model_settings()
    (problem_type, threshold, target statistics, temperature), as a neural model's config records them."""

    vectorizer: TfidfVectorizer
    coef: np.ndarray  # (K, F): K classes, labels, or 1 for a regression
    intercept: np.ndarray  # (K,)
    label_names: list[str]
    settings: dict[str, Any]
    regularization: dict[str, float]  # {"C": ...} or {"alpha": ...}: what validation chose

    @property
    def num_features(self) -> int:
        return int(self.coef.shape[1])

    @property
    def task(self) -> Task:
        """The task the model was fitted for, with what its predictions need (hf_project.tasks.task_of_model)."""
        config = SimpleNamespace(**self.settings, id2label=dict(enumerate(self.label_names)))
        return task_of_model(config)

    def features(self, texts: list[str]) -> Any:
        """(N, F) sparse TF-IDF rows."""
        return self.vectorizer.transform(texts)

    def logits(self, texts_or_features: Any) -> np.ndarray:
        """(N, K) logits of texts (or of their features(), computed once for several layers)."""
        features = self.features(texts_or_features) if isinstance(texts_or_features, list) else texts_or_features
        return np.asarray(features @ self.coef.T) + self.intercept

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        vocabulary = sorted(self.vectorizer.vocabulary_, key=self.vectorizer.vocabulary_.get)  # in column order
        params = self.vectorizer.get_params()
        config = {
            "model_type": MODEL_TYPE,
            "label_names": self.label_names,
            **self.settings,
            "regularization": self.regularization,
            "vectorizer": {k: params[k] for k in TRANSFORM_SETTINGS},
            "vocabulary": vocabulary,
        }
        runs.atomic_write_text(folder / LINEAR_CONFIG, json.dumps(config, indent=1) + "\n")
        save_file({"idf": np.ascontiguousarray(self.vectorizer.idf_), "coef": np.ascontiguousarray(self.coef),
                   "intercept": np.ascontiguousarray(self.intercept)}, str(folder / LINEAR_WEIGHTS))

    @classmethod
    def load(cls, folder: str | Path) -> LinearTextModel:
        folder = Path(folder)
        try:
            config = json.loads((folder / LINEAR_CONFIG).read_text())
            weights = load_file(str(folder / LINEAR_WEIGHTS))
        except (OSError, ValueError) as err:
            raise UserError(f"cannot load the linear model in {folder} ({err}): train it again") from None
        params = config["vectorizer"]
        params["ngram_range"] = tuple(params["ngram_range"])
        vocabulary = {term: k for k, term in enumerate(config["vocabulary"])}
        vectorizer = TfidfVectorizer(**params, vocabulary=vocabulary, dtype=np.float64)
        vectorizer.idf_ = weights["idf"]
        settings = {k: v for k, v in config.items()
                    if k not in ("model_type", "label_names", "regularization", "vectorizer", "vocabulary")}
        return cls(vectorizer, weights["coef"], weights["intercept"], list(config["label_names"]), settings,
                   config.get("regularization") or {})


def is_linear_model(folder: str | Path) -> bool:
    """Whether `folder` holds a saved LinearTextModel."""
    return (Path(folder) / LINEAR_CONFIG).is_file()
