"""Accuracy metric for `evaluate`, shipped with hf_project and loaded by local path (never from the hub).

evaluate copies this file into its modules cache and imports it there, so it must stay self-contained:
no relative imports, and no `from evaluate import ...` (evaluate picks the first non-abstract
EvaluationModule subclass in the module namespace, which would then be the imported base class).
"""

import datasets
import evaluate
from sklearn.metrics import accuracy_score

_DESCRIPTION = (
    "Accuracy: the fraction of predictions equal to the references, via sklearn.metrics.accuracy_score."
)

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted class ids.
    references (`list` of `int`): true class ids.
    normalize (`bool`): if False, return the number of correct predictions instead of the fraction.
    sample_weight (`list` of `float`): optional per-example weights.
Returns:
    accuracy (`float`)
"""

_CITATION = "Pedregosa et al., Scikit-learn: Machine Learning in Python, JMLR 12, pp. 2825-2830, 2011."


class Accuracy(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}
            ),
            reference_urls=[
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.accuracy_score.html"
            ],
        )

    def _compute(self, predictions, references, normalize=True, sample_weight=None) -> dict:
        score = accuracy_score(references, predictions, normalize=normalize, sample_weight=sample_weight)
        return {"accuracy": float(score)}
