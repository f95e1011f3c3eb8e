"""Report-model layer: the JSON-able frozen dataclasses of results.json (Report, audit views, comparisons).

May import: analysis (result types), model (plain records), data, config, errors; no torch.

The report model: JSON-able frozen dataclasses; ``results.json`` is ``Report.to_dict()``, read back by ``from_dict``.

Built once by ``reportgen.assemble.report.build_report`` from the stage results; renderers, gates and the baseline
comparison read only this. Imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reportgen.analysis.attention import ClassSelection
from reportgen.analysis.classes import Confusion  # re-exported: ``report.Confusion`` is part of the model
from reportgen.analysis.faithfulness import ExplanationCheck
from reportgen.analysis.metrics import ClassMetrics, Metrics
from reportgen.analysis.model_check import ModelCheck
from reportgen.data.dataset import SkippedFile
from reportgen.data.source import LabelDisagreement
from reportgen.model.history import EpochStats
from reportgen.report.audit import Audit
from reportgen.report.comparison import Changes, GateResult
from reportgen.report.serialize import from_plain, to_plain

SCHEMA_VERSION = 1
FIGURES_DIR = "figures"  # the charts' folder inside the output folder
FIGURE_FILES = {  # figure key -> file name inside FIGURES_DIR, in the order they are drawn
    "montage": "montage.jpg",
    "class_histogram": "class_histogram.png",
    "dataset_map": "dataset_map.png",
    "training_curves": "training_curves.png",
    "confusion_matrix": "confusion.png",
    "reliability": "reliability.png",
    "mean_cams": "mean_cams.png",
}


@dataclass(frozen=True)
class RunInfo:
    """Provenance of the run."""

    started_at: str  # ISO 8601, UTC
    versions: dict[str, str]  # package -> version
    device: str
    seed: int
    timings: dict[str, float]  # stage -> seconds
    config: dict[str, Any]


@dataclass(frozen=True)
class MetadataField:
    """A metadata column of the data set (the values are in each image's ``ImageEntry.metadata``)."""

    name: str
    kind: str  # "category" | "number" | "date" (reportgen.data.metadata)


@dataclass(frozen=True)
class DatasetSummary:
    """The audited folder."""

    root: str
    class_names: tuple[str, ...]
    split_counts: dict[str, dict[str, int]]  # split -> class name -> images
    total_images: int
    skipped: tuple[SkippedFile, ...]
    under_represented: tuple[str, ...] = ()  # class names marked by the rule below
    under_represented_rule: str = ""  # the rule, in words, for the report
    layout: str = "class-folders"  # "class-folders" | "split-folders" | "manifest" (labels from the manifest)
    split_source: str = "random"  # "random" (made by reportgen) | "folders" | "manifest" (as given)
    split_folders: tuple[str, ...] = ()  # the split folders' names as on disk (split_source "folders")
    manifest: str = ""  # the manifest's file name, when one was read
    manifest_columns: tuple[str, ...] = ()  # its columns, as in its header
    metadata_columns: tuple[MetadataField, ...] = ()
    val_carved: bool = False  # the given split had no val images: val was carved from train (seeded, stratified)
    classes_without_test: tuple[str, ...] = ()  # classes with no image in the given test split
    label_disagreements: tuple[LabelDisagreement, ...] = ()  # manifest labels that are not the image's folder
    split_sentence: str = ""  # where the split came from, in one sentence (the narrative's)


@dataclass(frozen=True)
class DatasetMap:
    """The map of the data set (figure ``dataset_map``): how its points were laid out, or why there is none."""

    method: str  # "pca" | "tsne" (reportgen.analysis.embedding_map); "" when there is no map
    points: int  # images on the map
    subsampled: bool  # True: a sample of the images, stratified by class
    why_not: str = ""  # why there is no map


@dataclass(frozen=True)
class ModelSummary:
    """The classifier that was audited."""

    arch: str
    weights_source: str
    image_size: int
    cam_layer: str
    trained: bool  # False when loaded from --checkpoint
    checkpoint: str | None


FLAG_KINDS = (  # ImageFlag.kind, in the order a card shows its badges
    "label_error",  # the label check's "likely wrong" tier; detail: suggested class, value: its probability
    "label_review",  # its "worth a look" tier; the same detail and value
    "copy_other_class",  # an exact or near copy labelled as another class; detail: that class
    "leak",  # an exact or near copy in another split; detail: that split
    "copy",  # an exact or near copy in the same class and split; detail: the split
    "outlier",  # far from every class ("belongs to no class?"); detail: nearest class, value: robust z-score
    "health",  # fails an image-health check; detail: the checks' reasons, "; "-joined
)


@dataclass(frozen=True)
class ImageFlag:
    """What another check of the audit found about a gallery image (the cross-reference, by ``rel_path``)."""

    kind: str  # one of FLAG_KINDS
    detail: str = ""  # see FLAG_KINDS
    value: float | None = None  # see FLAG_KINDS; copies: the similarity of a near copy, None for an exact one
    other: str = ""  # copies: the other file's rel_path


@dataclass(frozen=True)
class GalleryImage:
    """One image of a max/min activating gallery."""

    rel_path: str
    split: str
    true_class: str
    predicted_class: str
    score: float  # score for the gallery's class
    predicted_score: float  # score of the predicted class
    correct: bool
    thumbnail: str | None = None  # image file relative to the output folder
    cam: str | None = None  # Grad-CAM overlay for the predicted class
    cam_true: str | None = None  # Grad-CAM overlay for the true class (misclassified images only)
    true_score: float | None = None  # score of the true class (the gallery's class in a class section)
    flags: tuple[ImageFlag, ...] = ()  # what the audit's checks found about this image, in FLAG_KINDS order


@dataclass(frozen=True)
class ClassSection:
    """Everything the report says about one class."""

    class_name: str
    metrics: ClassMetrics
    split_counts: dict[str, int]
    top: tuple[GalleryImage, ...]
    bottom: tuple[GalleryImage, ...]
    confused_with: tuple[Confusion, ...] = ()  # this class's test images predicted as other classes
    under_represented: bool = False
    narrative: tuple[str, ...] = ()  # sentences
    complete: bool = False  # too few test images for two galleries: ``top`` holds them all once, by score
    top_title: str = ""  # the galleries' headings and leads, written by the narrative
    top_lead: str = ""
    bottom_title: str = ""
    bottom_lead: str = ""


@dataclass(frozen=True)
class ProbeResult:
    """An image from outside the data set, classified and explained (``--probe``)."""

    name: str  # file name as given
    top_classes: tuple[tuple[str, float], ...]  # (class name, score), best first
    thumbnail: str | None = None
    cam: str | None = None  # Grad-CAM overlay for the top class


@dataclass(frozen=True)
class ImageEntry:
    """One image of the run, as a later ``--baseline`` run compares it."""

    rel_path: str
    sha256: str
    label: str
    split: str
    width: int
    height: int
    metadata: dict[str, str | float | None] = field(default_factory=dict)  # column name -> value (None: missing)


@dataclass(frozen=True)
class Report:
    """The whole audit; ``results.json`` is ``report.to_dict()``."""

    schema_version: int
    run: RunInfo
    dataset: DatasetSummary
    model: ModelSummary
    training: tuple[EpochStats, ...] | None  # None when loaded from a checkpoint
    metrics: Metrics
    classes: tuple[ClassSection, ...]
    model_check: ModelCheck | None = None  # the model against a linear probe and the majority class
    top_confusions: tuple[Confusion, ...] = ()  # largest off-diagonal cells, largest first
    model_verdict: str = ""  # one sentence: how far the model can be trusted (from model_check)
    model_notes: tuple[str, ...] = ()  # one sentence per problem the model check found
    findings: tuple[str, ...] = ()  # up to 5 key findings for the summary, each one that could have been false
    figures: dict[str, str] = field(default_factory=dict)  # figure name -> file relative to the output folder
    probes: tuple[ProbeResult, ...] = ()
    caveats: tuple[str, ...] = ()
    audit: Audit | None = None  # data-defect checks; None with --no-audit
    changes: Changes | None = None  # with --baseline
    gates: tuple[GateResult, ...] = ()  # with --fail-under / --fail-over
    images: tuple[ImageEntry, ...] = ()  # every image with its content hash, for a later --baseline run
    training_start_val_loss: float | None = None  # the starting model's validation loss (epoch 0), when measured
    training_start_val_accuracy: float | None = None
    dataset_map: DatasetMap | None = None  # None in reports written before the map existed
    pdf_classes: ClassSelection | None = None  # the classes the PDF details and why; None: every class
    explanation_check: ExplanationCheck | None = None  # how faithful the heat maps are; None: not run
    explanation_verdict: str = ""  # one sentence on it (from explanation_check), after "Heat maps: <verdict>."
    training_length: str = ""  # why training ran as long as it did, with --patience (narrative)
    explanation_notes: tuple[str, ...] = ()  # its details, a sentence each
    explanation_warning: str = ""  # above every gallery when the maps are not faithful

    def to_dict(self) -> dict[str, Any]:
        """The whole of ``results.json``: the report as JSON-able primitives (tuples become lists)."""
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """Read back what ``to_dict`` wrote (e.g. a previous run's ``results.json``).

        Raises:
            SchemaError: the data does not have the report's layout; the message names the field.
        """
        return from_plain(cls, data)
