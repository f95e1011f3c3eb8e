"""Build the report model, once, from the stage results: facts first, then the words written on them."""

from __future__ import annotations

import numpy as np

from reportgen.analysis.extremes import ClassExtremes
from reportgen.analysis.metrics import Metrics
from reportgen.predictions import Predictions
from reportgen.report import ClassSection, GalleryImage


def gallery_image(predictions: Predictions, image_idx: int, class_idx: int) -> GalleryImage:
    """Describe image ``image_idx`` as seen from class ``class_idx``'s gallery."""
    probs = predictions.probs[image_idx]
    predicted = int(np.argmax(probs))
    true = int(predictions.labels[image_idx])
    names = predictions.class_names
    return GalleryImage(
        rel_path=predictions.rel_paths[image_idx],
        split=str(predictions.splits[image_idx]),
        true_class=names[true],
        predicted_class=names[predicted],
        score=round(float(probs[class_idx]), 6),
        predicted_score=round(float(probs[predicted]), 6),
        correct=predicted == true,
    )


def class_sections(
    predictions: Predictions, metrics: Metrics, extremes: tuple[ClassExtremes, ...]
) -> tuple[ClassSection, ...]:
    """One section per class with its metrics and galleries (no pictures yet)."""
    sections = []
    for ext in extremes:
        name = predictions.class_names[ext.class_idx]
        sections.append(
            ClassSection(
                class_name=name,
                metrics=metrics.per_class[ext.class_idx],
                split_counts={split: counts[name] for split, counts in metrics.split_counts.items()},
                top=tuple(gallery_image(predictions, i, ext.class_idx) for i in ext.top),
                bottom=tuple(gallery_image(predictions, i, ext.class_idx) for i in ext.bottom),
            )
        )
    return tuple(sections)
