"""Linear probe: logistic regression on the pretrained backbone's features, fitted on the training split.

It is two things at once. It is the reference a fine-tuned model must beat to be worth explaining (the
model check compares with it), and it is the starting head of the default recipe (linear probing, then
fine-tuning: Kumar et al., "Fine-Tuning can Distort Pretrained Features", ICLR 2022). It is fitted on
L2-normalised features (cosine geometry: the best probe of those measured), so its weights load into a
:class:`~reportgen.model.backbones.NormalisedLinear` head, and the frozen backbone plus that head is a complete
classifier with Grad-CAM.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

PROBE_C = 10.0  # inverse regularisation strength of the probe's logistic regression
PROBE_MAX_ITER = 2000


@dataclass(frozen=True)
class LinearProbe:
    """A fitted linear classifier: ``logits = normalise(features) @ weight.T + bias``."""

    weight: np.ndarray  # (C, D) float32
    bias: np.ndarray  # (C,) float32
    c: float  # the regularisation strength it was fitted with
    n_train: int  # training images it was fitted on

    def logits(self, features: np.ndarray) -> np.ndarray:
        """``(N, C)`` logits of ``(N, D)`` raw features."""
        return _normalise(features).astype(np.float32) @ self.weight.T + self.bias

    def probs(self, features: np.ndarray) -> np.ndarray:
        """``(N, C)`` softmax probabilities of ``(N, D)`` raw features."""
        z = self.logits(features)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)


def fit_linear_probe(
    features: np.ndarray, labels: np.ndarray, *, num_classes: int, seed: int, c: float = PROBE_C
) -> LinearProbe:
    """Fit a multinomial logistic regression on ``(N, D)`` features of the training images.

    Classes absent from ``labels`` get a bias far below the others, so the probe never predicts them.
    """
    from sklearn.linear_model import LogisticRegression

    if len(labels) == 0:
        raise ValueError("the linear probe needs at least one training image")
    x = _normalise(features.astype(np.float64))
    present = np.unique(labels)
    weight = np.zeros((num_classes, x.shape[1]), np.float64)
    bias = np.full(num_classes, -1e4, np.float64)
    if len(present) == 1:  # one class only: predict it
        bias[present[0]] = 0.0
    else:
        fit = LogisticRegression(C=c, max_iter=PROBE_MAX_ITER, random_state=seed).fit(x, labels)
        coef, intercept = fit.coef_, fit.intercept_
        if len(present) == 2:  # sklearn keeps one row for two classes: logits (-z/2, z/2) give the same softmax
            coef = np.vstack([-coef[0] / 2, coef[0] / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
        weight[fit.classes_] = coef
        bias[fit.classes_] = intercept
    return LinearProbe(weight.astype(np.float32), bias.astype(np.float32), c, len(labels))


def _normalise(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (as ``torch.nn.functional.normalize``: a zero row stays zero)."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)
