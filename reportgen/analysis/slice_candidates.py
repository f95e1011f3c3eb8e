"""Candidate slices of a data set: groups of images that share a metadata value, an image property or a cluster.

Three sources, each a list of :class:`Candidate` (a description a reader understands and a member mask):

* metadata columns (``reportgen.data.metadata``): a category column gives a slice per value; a number or
  date column is cut at its quintiles; missing values are a slice of their own;
* image properties (``ImageInfo``): size, aspect ratio, brightness, contrast, colourfulness and sharpness
  cut at their quintiles, the file format and the JPEG quality where known;
* clusters of the pretrained features across classes (k-means on class-centred unit rows at a few k).

A column with few distinct values gives a slice per value instead of bins. :mod:`reportgen.analysis.slices`
scores the candidates against the audited model's errors.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from reportgen.data.dataset import ImageInfo
from reportgen.data.metadata import CATEGORY, DATE, Metadata, MetadataColumn

METADATA, PROPERTY, CLUSTER = "metadata", "image property", "feature cluster"  # the sources, in report order
QUANTILES = 5  # a number is cut into quintiles: "in the lowest 20 %"
FEW_VALUES = 6  # a number with at most this many distinct values gives a slice per value
MAX_VALUES = 50  # most values of a category column tried (the most frequent ones)
# k-means at several k, coarse to fine (a group split in two at one k is whole at a coarser one): CLUSTER_COUNTS,
# and images / CLUSTERS_PER_IMAGES up to MAX_CLUSTERS; on PCA_DIMS principal components (benchmarks/planted_slices.py)
CLUSTER_COUNTS = (4, 8)
CLUSTERS_PER_IMAGES = 60
MAX_CLUSTERS = 24
PCA_DIMS = 32
PROPERTIES = (  # (name in the report, ImageInfo -> value)
    ("width", lambda i: float(i.width)),
    ("height", lambda i: float(i.height)),
    ("aspect ratio", lambda i: i.width / max(i.height, 1)),
    ("brightness", lambda i: i.brightness),
    ("contrast", lambda i: i.contrast),
    ("colourfulness", lambda i: i.colourfulness),
    ("sharpness", lambda i: i.sharpness),
    ("JPEG quality", lambda i: np.nan if i.jpeg_quality is None else float(i.jpeg_quality)),
)


@dataclass(frozen=True)
class Candidate:
    """A group of images to score: where it comes from, what it is in words, and its members."""

    source: str  # METADATA, PROPERTY or CLUSTER
    column: str  # the metadata column, the property, or "cluster"
    description: str  # e.g. "source = phone_b", "sharpness in the lowest 20 % (<= 0.0012)"
    members: np.ndarray  # (N,) bool


def metadata_candidates(metadata: Metadata, n: int) -> list[Candidate]:
    """A candidate per category value (the :data:`MAX_VALUES` most frequent) and per quintile of numbers and dates."""
    found: list[Candidate] = []
    for column in metadata.columns:
        if len(column.values) != n:
            raise ValueError(f"metadata column {column.name!r} has {len(column.values)} values for {n} images")
        if column.kind == CATEGORY:
            found += _category_candidates(METADATA, column.name, [None if v is None else str(v) for v in column.values])
        else:
            found += _number_candidates(METADATA, column.name, _numbers(column), dates=column.kind == DATE)
    return found


def property_candidates(infos: Sequence[ImageInfo]) -> list[Candidate]:
    """Quintiles (or values) of each image property, and a candidate per file format."""
    found: list[Candidate] = []
    for name, value in PROPERTIES:
        found += _number_candidates(PROPERTY, name, np.array([value(i) for i in infos], dtype=np.float64))
    found += _category_candidates(PROPERTY, "file format", [i.format or None for i in infos], missing=False)
    return found


def cluster_candidates(embeddings: np.ndarray | None, labels: np.ndarray, *, seed: int) -> list[Candidate]:
    """A candidate per k-means cluster of the class-centred features, at each k; none without features.

    Each image's unit feature row minus its class's mean row: what is left is how the image differs from its
    class, so a cluster gathers images that differ the same way (dark, blurred, one backdrop) across classes
    instead of re-finding the classes.
    """
    counts = _cluster_counts(0 if embeddings is None else len(embeddings))
    if embeddings is None or not counts:
        return []
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    z = np.asarray(embeddings, dtype=np.float32)
    z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    labels = np.asarray(labels).astype(np.int64)
    for c in np.unique(labels):
        z[labels == c] -= z[labels == c].mean(axis=0)
    if z.shape[1] > PCA_DIMS and len(z) > PCA_DIMS:
        z = PCA(n_components=PCA_DIMS, svd_solver="randomized", random_state=seed).fit_transform(z)
    found = []
    for k in counts:
        assigned = KMeans(n_clusters=k, n_init=2, random_state=seed).fit_predict(z)
        order = np.argsort(-np.bincount(assigned, minlength=k), kind="stable")  # cluster 1 is the largest
        found += [
            Candidate(CLUSTER, "cluster", f"feature cluster {rank + 1} of {k}: images like these", assigned == c)
            for rank, c in enumerate(order.tolist())
        ]
    return found


def _cluster_counts(n: int) -> tuple[int, ...]:
    """The k tried on ``n`` images: CLUSTER_COUNTS and n / CLUSTERS_PER_IMAGES (not below them), 4 images a cluster."""
    wanted = {*CLUSTER_COUNTS, min(MAX_CLUSTERS, round(n / CLUSTERS_PER_IMAGES))}
    return tuple(sorted(k for k in wanted if min(CLUSTER_COUNTS) <= k <= n // 4))  # k = 2 halves the set: no slice


def _category_candidates(source: str, name: str, values: list[str | None], *, missing: bool = True) -> list[Candidate]:
    counts = Counter(v for v in values if v is not None)
    if len(counts) < 2 and (not missing or None not in values):
        return []  # one value for every image: nothing to compare
    array = np.array(["" if v is None else v for v in values], dtype=object)
    found = [
        Candidate(source, name, f"{name} = {value}", array == value)
        for value, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_VALUES]
    ]
    if missing and None in values:
        found.append(Candidate(source, name, f"{name} missing", np.array([v is None for v in values])))
    return found


def _number_candidates(source: str, name: str, values: np.ndarray, *, dates: bool = False) -> list[Candidate]:
    known = ~np.isnan(values)
    distinct = np.unique(values[known])
    found: list[Candidate] = []
    if len(distinct) >= 2 and len(distinct) <= FEW_VALUES:
        found = [Candidate(source, name, f"{name} = {_num(v, dates)}", values == v) for v in distinct]
    elif len(distinct) > FEW_VALUES:
        found = _quantile_bins(source, name, values, known, dates)
    if len(distinct) >= 1 and not known.all():
        found.append(Candidate(source, name, f"{name} missing" if source == METADATA else f"{name} unknown", ~known))
    return found


def _quantile_bins(source: str, name: str, values: np.ndarray, known: np.ndarray, dates: bool) -> list[Candidate]:
    """A candidate per quintile; ties that merge two cuts merge their bins."""
    edges = np.quantile(values[known], np.linspace(0, 1, QUANTILES + 1))
    found = []
    step = 100 // QUANTILES
    for k in range(QUANTILES):
        low, high = edges[k], edges[k + 1]
        if k and low == edges[k - 1] and k < QUANTILES - 1:
            continue
        upper = values <= high if k == QUANTILES - 1 else values < high
        members = known & (values >= low) & upper
        if k == 0:
            members = known & (values < high)
            words = f"in the lowest {step} % (below {_num(high, dates)})"
        elif k == QUANTILES - 1:
            words = f"in the highest {step} % ({_num(low, dates)} or more)"
        else:
            words = f"between {_num(low, dates)} and {_num(high, dates)} ({k * step}-{(k + 1) * step} % of images)"
        if members.any() and not members[known].all():
            found.append(Candidate(source, name, f"{name} {words}", members))
    return found


def _num(value: float, date: bool = False) -> str:
    if date:
        return datetime.fromtimestamp(value * 86400, tz=timezone.utc).date().isoformat()
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:,.0f}"


def _numbers(column: MetadataColumn) -> np.ndarray:
    """A number or date column as floats (dates: days since 1970), NaN where missing or unreadable."""
    out = np.full(len(column.values), np.nan)
    for i, v in enumerate(column.values):
        if v is None:
            continue
        try:
            out[i] = _days(str(v)) if column.kind == DATE else float(v)
        except (TypeError, ValueError):
            continue
    return out


def _days(iso: str) -> float:
    """Days since 1970-01-01 of an ISO-8601 date or time (a time without a zone is read as UTC)."""
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp() / 86400
