"""Recall metric for `evaluate`, shipped with hf_project and loaded by local path (never from the hub).

evaluate copies this file into its modules cache and imports it there, so it must stay self-contained:
no relative imports, and no `from evaluate import ...` (evaluate picks the first non-abstract
EvaluationModule subclass in the module namespace, which would then be the imported base class).
"""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import recall_score

_DESCRIPTION = (
    "Recall: the fraction of true positives that are predicted positive, via sklearn.metrics.recall_score."
)

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted class ids.
    references (`list` of `int`): true class ids.
    labels (`list` of `int`): the labels to score (and average over); include labels absent from the
        data to have them count as zero in a macro average.
    pos_label (`int`): the positive class when average="binary".
    average (`str` or None): "binary" (default), "micro", "macro", "weighted", "samples", or None for
        one score per label.
    sample_weight (`list` of `float`): optional per-example weights.
    zero_division ("warn", 0, 1 or np.nan): the value used when a score is undefined.
Returns:
    recall (`float`, or an array with one score per label when average is None)
"""

_CITATION = "Pedregosa et al., Scikit-learn: Machine Learning in Python, JMLR 12, pp. 2825-2830, 2011."


class Recall(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}
            ),
            reference_urls=[
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.recall_score.html"
            ],
        )

    def _compute(
        self,
        predictions,
        references,
        labels=None,
        pos_label=1,
        average="binary",
        sample_weight=None,
        zero_division="warn",
    ) -> dict:
        score = recall_score(
            references,
            predictions,
            labels=labels,
            pos_label=pos_label,
            average=average,
            sample_weight=sample_weight,
            zero_division=zero_division,
        )
        # A per-label result stays an array so callers can index it by label id.
        return {"recall": float(score) if np.size(score) == 1 and average is not None else np.asarray(score)}
