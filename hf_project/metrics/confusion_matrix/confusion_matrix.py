"""Confusion-matrix metric for `evaluate`, shipped with hf_project, loaded by local path (never from the hub).

evaluate copies this file into its modules cache and imports it there, so it must stay self-contained:
no relative imports, and no `from evaluate import ...` (evaluate picks the first non-abstract
EvaluationModule subclass in the module namespace, which would then be the imported base class).
"""

import datasets
import evaluate
from sklearn.metrics import confusion_matrix

_DESCRIPTION = (
    "Confusion matrix via sklearn.metrics.confusion_matrix: entry [i, j] counts examples whose true label "
    "is labels[i] and whose predicted label is labels[j]."
)

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted class ids.
    references (`list` of `int`): true class ids.
    labels (`list` of `int`): the labels indexing rows and columns, in order; pass every label id so
        classes absent from the data still get a row and a column.
    sample_weight (`list` of `float`): optional per-example weights.
    normalize ("true", "pred", "all" or None): normalise over rows, columns or everything.
Returns:
    confusion_matrix (`numpy.ndarray` of shape (n_labels, n_labels))
"""

_CITATION = "Pedregosa et al., Scikit-learn: Machine Learning in Python, JMLR 12, pp. 2825-2830, 2011."


class ConfusionMatrix(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}
            ),
            reference_urls=[
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.confusion_matrix.html"
            ],
        )

    def _compute(self, predictions, references, labels=None, sample_weight=None, normalize=None) -> dict:
        matrix = confusion_matrix(
            references, predictions, labels=labels, sample_weight=sample_weight, normalize=normalize
        )
        return {"confusion_matrix": matrix}
