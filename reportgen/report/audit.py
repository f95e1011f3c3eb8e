"""The audit's part of the report model: the data-defect finders' results, told by file and class name.

These frozen, JSON-able views name images by path and classes by name and point to the thumbnails written
for them; renderers read only these. ``reportgen.assemble.audit`` builds them from the finders' results
(which speak in image and class indices), and the per-class facts the class narratives read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

SHOWN_SUSPECTS = 24  # likely-wrong suspects with thumbnails in the report; results.json lists all
SHOWN_REVIEW = 12  # worth-a-look suspects with thumbnails
SHOWN_OUTLIERS = 12  # images that belong to no class, with thumbnails
SHOWN_PAIRS = 16  # duplicate pairs shown side by side
SHOWN_HEALTH = 24  # image-health issues with thumbnails
SHOWN_SLICE_MISTAKES = 6  # mistakes shown per slice where the model fails, with thumbnails and Grad-CAM

# (image index, class index to explain or None) -> thumbnail path, Grad-CAM overlay path or None
AssetFn = Callable[[int, int | None], tuple[str, str | None]]


@dataclass(frozen=True)
class AuditImage:
    """An image named by an audit finding."""

    image_idx: int  # row of the data set (``images`` in results.json)
    rel_path: str
    class_name: str  # its given label
    split: str
    thumbnail: str | None = None  # relative to the output folder
    cam: str | None = None  # Grad-CAM overlay for the class the finding is about


@dataclass(frozen=True)
class SuspectView:
    """A suspected label error."""

    image_idx: int
    image: AuditImage
    given_label: str
    suggested_label: str
    given_prob: float  # out-of-sample probability of the given label
    suggested_prob: float  # out-of-sample probability of the suggested label
    quality: float  # label quality: temperature-scaled probability of the given label, low = likely wrong
    predicted_label: str  # what the audited (fine-tuned) model predicts for it
    wrong_prob: float = 0.0  # posterior probability that the given label is wrong


@dataclass(frozen=True)
class LabelCheck:
    """Suspected label errors over the whole data set."""

    method: str  # "embeddings" | "finetune"
    method_text: str  # how the out-of-sample probabilities were made, for the report
    folds: int
    n_images: int
    total: int  # suspects
    noise_rate: float
    noise_rate_method: str
    probs_accuracy: float  # agreement of the out-of-sample probabilities with the given labels
    filter_by: str
    rank_by: str
    per_class: dict[str, int]  # given class -> suspects
    suggested: dict[str, dict[str, int]]  # given class -> suggested class -> suspects
    class_noise_rates: dict[str, float]
    suspects: tuple[SuspectView, ...]  # "likely wrong", most suspect first; the first ``shown`` have thumbnails
    shown: int
    caution: str = ""  # why the suspects deserve extra care, when the probabilities are weak
    worth_a_look: tuple[SuspectView, ...] = ()  # the next ones by rank; the first ``review_shown`` have thumbnails
    review_shown: int = 0
    temperature: float = 1.0  # fitted temperature of the out-of-sample probabilities
    likely_meaning: str = ""  # what the tier meant on planted data, for the report
    review_meaning: str = ""


@dataclass(frozen=True)
class OutlierView:
    """An image that seems to belong to no class."""

    image: AuditImage
    nearest_class: str  # the class it is least far from
    distance: float
    z: float


@dataclass(frozen=True)
class OutlierCheck:
    """Images far from every class ("belongs to no class?")."""

    method: str
    min_z: float
    n_images: int
    total: int
    outliers: tuple[OutlierView, ...]
    shown: int
    meaning: str


@dataclass(frozen=True)
class PairView:
    """Two copies of one picture."""

    a: AuditImage
    b: AuditImage
    kind: str  # "exact" | "near"
    similarity: float | None
    across_classes: bool
    leaks: bool  # copies in different splits


@dataclass(frozen=True)
class DuplicateCheck:
    """Exact and near-duplicates and the leakage they cause."""

    threshold: float | None
    threshold_text: str
    exact: int
    near: int
    total: int  # pairs
    across_classes: int
    across_splits: int
    leaks_by_splits: dict[str, int]
    images_involved: int
    groups: int
    pairs: tuple[PairView, ...]  # most harmful first; the first ``shown`` have thumbnails
    shown: int
    truncated: bool
    unconfirmed: int = 0  # pairs close in the features that the pixels showed to be different pictures


@dataclass(frozen=True)
class CalibrationCheck:
    """Whether the test scores read as probabilities."""

    n_images: int
    ece: float
    ece_noise_floor: float
    mce: float
    mean_confidence: float
    accuracy: float
    brier: float
    readable_as_probabilities: bool
    direction: str
    text: str


@dataclass(frozen=True)
class ShortcutClass:
    """Where one class's evidence sits."""

    class_name: str
    n_maps: int  # usable (non-empty) maps, those the figures come from
    concentration: float
    border_share: float
    centre_offset: float
    region: str
    consistency: float
    peak_spread: float
    flagged: bool  # the evidence sits apart and the model is measured to rely on it
    reasons: tuple[str, ...]  # flagged or worth a look: the reliance sentence first, then the position's
    measured: bool = True  # False with fewer than two maps: the figures are placeholders, not a measurement
    worth_a_look: bool = False  # the evidence sits apart, but no reliance on it was measured
    drop: float | None = None  # the class score's mean fall when its evidence region is removed
    control_drop: float | None = None  # ... when an equal area of the object elsewhere is


@dataclass(frozen=True)
class ShortcutCheck:
    """Mean Grad-CAM evidence per class over its correctly classified test images."""

    classes: tuple[ShortcutClass, ...]
    flagged: tuple[str, ...]
    min_maps: int
    rule: str
    worth_a_look: tuple[str, ...] = ()  # evidence apart, no measured reliance


@dataclass(frozen=True)
class StampClass:
    """Whether one class's images share a fixed pixel pattern."""

    class_name: str
    n_images: int
    fixed_cells: int
    area: float  # share of the image the fixed cells cover
    region: str
    flagged: bool
    reason: str


@dataclass(frozen=True)
class StampCheck:
    """Fixed patterns (stamps, watermarks, frames) shared by one class's images, found in the pixels."""

    classes: tuple[StampClass, ...]
    flagged: tuple[str, ...]
    rule: str


@dataclass(frozen=True)
class HealthView:
    """An image failing a health check."""

    image: AuditImage
    checks: tuple[str, ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class HealthCheck:
    """Image-health problems, counted per check and class."""

    total: int
    counts: dict[str, int]
    per_class: dict[str, dict[str, int]]
    colour_dataset: bool
    thresholds: dict[str, float]
    issues: tuple[HealthView, ...]
    shown: int


@dataclass(frozen=True)
class SliceMistake:
    """A validation or test image of a slice that the audited model gets wrong."""

    image: AuditImage  # its overlay explains the predicted class
    predicted: str
    score: float  # the audited model's score for the predicted class


@dataclass(frozen=True)
class SliceView:
    """A slice of the data set where the audited model fails more often than elsewhere."""

    source: str  # "metadata" | "image property" | "feature cluster"
    description: str
    text: str  # the slice in one sentence with its numbers
    images: int  # members over all splits
    evaluated: int  # validation and test images
    errors: int
    error_rate: float
    rest_error_rate: float
    expected_error_rate: float  # its classes' error rate outside the slice
    mean_score: float  # the audited model's mean score for the true class on its validation and test images
    rest_mean_score: float
    p_value: float
    p_adjusted: float
    classes: dict[str, int]  # true class -> its mistakes in the slice, most first
    suspect_share: float | None  # share of its images suspected of a wrong label; None without a label check
    rest_suspect_share: float | None
    labelling_note: str  # why its errors may be wrong labels rather than the model's; "" when not
    merged: tuple[str, ...]  # overlapping slices merged into it
    members: tuple[str, ...]  # paths of every image of the slice
    mistakes: tuple[SliceMistake, ...]  # every mistake, most confident first; the first ``shown`` have pictures
    shown: int


@dataclass(frozen=True)
class SliceCheck:
    """Slices of the data set where the audited model fails, and what was tried to find them."""

    slices: tuple[SliceView, ...]  # strongest first
    total: int
    tried: dict[str, int]  # source -> candidates
    tested: int
    evaluated: int
    error_rate: float
    min_size: int
    min_effect: float
    alpha: float
    rule: str  # how slices are made and tested
    tried_text: str  # what was tried, said when nothing was found


@dataclass(frozen=True)
class Audit:
    """Everything the data-defect checks found; a field is None when its check did not run."""

    label_issues: LabelCheck | None = None
    duplicates: DuplicateCheck | None = None
    calibration: CalibrationCheck | None = None
    outliers: OutlierCheck | None = None
    shortcuts: ShortcutCheck | None = None
    stamps: StampCheck | None = None
    health: HealthCheck | None = None
    slices: SliceCheck | None = None
    not_run: dict[str, str] = field(default_factory=dict)  # check -> why it did not run


@dataclass(frozen=True)
class ClassAuditFacts:
    """What the data-defect checks found for one class; every default means "nothing found / not run"."""

    label_suspects: int = 0  # images of this class flagged as likely mislabelled by the label check
    suggested_labels: dict[str, int] = field(default_factory=dict)  # suggested class -> suspects
    leaked_test_images: int = 0  # test images of this class with an exact or near copy in the training split
    cross_class_duplicates: int = 0  # images of this class with an exact or near copy labelled as another class
    duplicate_classes: dict[str, int] = field(default_factory=dict)  # other class -> such images
    shortcut: bool = False  # the Grad-CAM shortcut check flags this class
    shortcut_reason: str = ""  # the check's reason, a sentence
    health_issues: int = 0  # images of this class failing an image-health check
