"""The report's structure (ydata-profiling's ``get_report_structure``): what the templates lay out, in order.

Which chapters and sections exist, the contents, the tags of classes, checks and gates, the rows of derived
tables (counts and totals) and the figures. Findings stay in the report model. Pure: no Jinja, no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reportgen.narrative.audit import HEALTH_CHECK_TITLES
from reportgen.narrative.explanation import method_name, verdict_words
from reportgen.narrative.glance import GlanceRow, glance_rows
from reportgen.render.classes import ClassEntry, class_layout
from reportgen.render.elements import UNDER_REPRESENTED, Card, Listing, Row, Tag
from reportgen.render.galleries import card_metadata
from reportgen.report.comparison import ADDED, REMOVED

if TYPE_CHECKING:  # types only: the structure needs no torch
    from reportgen.report import Report
    from reportgen.report.audit import Audit, LabelCheck
    from reportgen.report.comparison import Changes, Delta, GateResult

SUMMARY_SKIPPED, DATASET_SKIPPED = 8, 200  # skipped files listed on page 1, and in the data set chapter
SUMMARY_CLASSES = 30  # class names on page 1; the data set chapter lists them all
MAIN_CAVEATS = 3  # caveats on page 1: the first ones (``narrative.caveats`` puts the most important first)
REFS_SHOWN = 20  # image references per list in the changes chapter
FIGURE_TITLES = {  # key -> alt text, and the heading in the extra-figures chapter; others: the key in words
    "montage": "Montage of nine random images with their labels",
    "class_histogram": "Images per class and split",
    "dataset_map": "Map of the data set: images placed by their pretrained features",
    "training_curves": "Training and validation loss and accuracy per epoch",
    "confusion_matrix": "Row-normalised confusion matrix",
    "reliability": "Calibration: reliability diagram",
    "mean_cams": "Mean Grad-CAM per class",
}
FIGURE_CAPTIONS = {  # key -> caption under the figure in its chapter (figures in the extra-figures chapter have none)
    "montage": "Nine random images of the data set with their labels.",
    "class_histogram": "Images per class in each split. Under-represented classes have red names and hatched bars.",
    "dataset_map": "Each dot is an image, near images whose pretrained features resemble its own; the axes mean "
    "nothing; rings mark suspected label errors (grey: worth a look), crosses copies, diamonds outliers.",
    "training_curves": "Loss and accuracy per epoch; training values are running means over the epoch.",
    "confusion_matrix": "Row-normalised confusion matrix: rows are true classes, columns predicted classes; each "
    "cell shows the share of the row's test images and their count.",
    "reliability": "Reliability diagram: each bar is the accuracy of the test images in a confidence bin, the dark "
    "tick their mean confidence, the hatching the gap; on a calibrated model the ticks meet the bar tops.",
    "mean_cams": "Mean Grad-CAM per class over its correctly classified test images.",
}
FIGURE_SIZES = {"montage": "small", "confusion_matrix": "square", "reliability": "medium"}  # CSS class; else large
HEATMAP_FIGURES = frozenset({"mean_cams"})  # figures that need the per-image normalisation note
PLACED_FIGURES = ("montage", "class_histogram", "dataset_map", "training_curves", "confusion_matrix")  # placed
# Audit sections in order: (HTML id "audit-<macro>", title, the Audit.not_run keys it reports (the first names its
# field of Audit; the chapter's head lists the keys no section reports), the check in words, its figures).
AUDIT_SECTIONS = (
    ("audit-labels", "Suspected label errors", ("label_issues",), "label check", ()),
    ("audit-outliers", "Belongs to no class?", ("outliers",), "outlier check", ()),
    ("audit-duplicates", "Duplicates and leakage", ("duplicates", "near_duplicates"), "duplicate check", ()),
    ("audit-calibration", "Calibration", ("calibration",), "calibration check", ("reliability",)),
    ("audit-shortcuts", "Shortcut check", ("shortcuts",), "shortcut check", ("mean_cams",)),
    ("audit-stamps", "Fixed patterns (stamps)", ("stamps",), "fixed-pattern check", ()),
    ("audit-health", "Image health", ("health",), "image-health check", ()),
    ("audit-slices", "Where the model fails", ("slices",), "slice finder", ()),
)
GLANCE = tuple((checks[0], title, id_) for id_, title, checks, *_ in AUDIT_SECTIONS)  # page 1: (key, check, link)
BALANCE, NO_AUDIT = ("balance", "Class balance", "dataset"), ("audit", "Data-set audit", "")  # no link: not shown
EXPLANATION = ("explanation", "Heat maps", "explanation-check")  # page 1's row of the explanation check
EXPLANATION_TONES = {"faithful": "sound", "weak": "caution", "not_informative": "unsound", "unchecked": "unchecked"}
DELTA_TOLERANCE = 0.0005  # a change of a fraction within this prints as ±0.0 pts and gets no tone


FLAGGED = (Tag("flagged", "bad"),)
STATUS_TAGS = {ADDED: (Tag("new class", "warn"),), REMOVED: (Tag("class removed", "warn"),)}  # in one run only
GATE_BADGES = {True: Tag("passed", "correct"), False: Tag("failed", "wrong")}


@dataclass(frozen=True)
class Figure:
    """A figure file and how it is shown."""

    path: str  # relative to the output folder
    title: str  # alt text; the heading in the extra-figures chapter
    caption: str  # "" for none
    size: str  # CSS width class
    cam_note: bool  # a heat map: needs the per-image normalisation note


@dataclass(frozen=True)
class Section:
    """A chapter of the report, or a section of the audit chapter, in reading order."""

    key: str  # which template macro lays it out
    id: str  # HTML id, the target of the contents' link
    title: str
    shown: bool
    figures: tuple[Figure, ...] = ()  # placed inside it, in this order
    ran: bool = True  # False: the audit check did not run, which the section says with ``what`` and ``reason``
    what: str = ""
    reason: str = ""
    children: tuple[Section, ...] | None = None  # the contents' sub-entries (the classes)


@dataclass(frozen=True)
class ExplanationLayout:
    """The explanation check's verdict in words, its tone (the model verdict's CSS classes) and the method's name."""

    verdict: str
    tone: str
    method: str


@dataclass(frozen=True)
class AuditLayout:
    """The audit chapter: its sections and the rows and lists of its tables and galleries."""

    sections: tuple[Section, ...]
    other_not_run: tuple[tuple[str, str], ...]  # (check in words, why) for checks that no section reports
    near_not_run: str  # why near duplicates were not sought; "" when they were
    label_rows: tuple[Row, ...] = ()  # item: class; cells: suspects, noise rate, ((suggested class, n), ...)
    suspects: Listing = Listing(())
    review: Listing = Listing(())  # its cam_note covers both tiers
    outliers: Listing = Listing(())
    pairs: Listing = Listing(())
    shortcut_rows: tuple[Row, ...] = ()  # item: ShortcutClass
    stamp_rows: tuple[Row, ...] = ()  # item: StampClass; only classes with fixed cells
    classes_without_stamps: int = 0
    health_columns: tuple[tuple[str, int], ...] = ()  # (check in words, images failing it) for checks that fired
    health_rows: tuple[Row, ...] = ()  # item: class; cells: its count per column (classes with a failure)
    health_cards: Listing = Listing(())
    slice_cards: tuple[tuple[Any, Listing], ...] = ()  # (SliceView, its shown mistakes); cam_note on the last


@dataclass(frozen=True)
class ChangesLayout:
    """The changes chapter: headline cells, table rows and image lists."""

    accuracy: tuple[Delta, str]  # the change and its tone: "neg", "pos" or ""
    macro_f1: tuple[Delta, str]
    image_rows: tuple[Row, ...]  # item: ClassImageChanges
    metric_rows: tuple[Row, ...]  # item: ClassMetricChanges; cells: (change, tone) of precision, recall, F1
    moved: Listing
    new: Listing
    resolved: Listing


@dataclass(frozen=True)
class Structure:
    """Everything the templates lay out beside the report model."""

    title: str
    chapters: tuple[Section, ...]  # every chapter in reading order, shown or not
    toc: tuple[Section, ...]  # the shown chapters after the summary
    splits: tuple[tuple[str, int], ...]  # (split, images) for the splits holding images
    test_images: int
    glance: tuple[GlanceRow, ...]  # page 1's audit at a glance: a row per audit section, heat maps, class balance
    main_caveats: Listing  # page 1's caveats; ``more``: how many more the caveats chapter lists
    skipped_summary: Listing
    class_names: Listing  # page 1's class names; ``more``: how many the data set chapter adds
    skipped_all: Listing | None  # the data set chapter's list, when page 1 cannot hold them all
    versions: tuple[tuple[str, str], ...]  # (package, version) by name, without the platform
    platform: str
    class_counts: tuple[Row, ...]  # item: class; cells: images per split of ``splits``, then the total
    recipe: str
    kept_epoch: int | None  # the epoch whose model was kept, when it is not the last one
    metric_rows: tuple[Row, ...]  # item: ClassMetrics
    audit: AuditLayout | None
    changes: ChangesLayout | None
    gate_rows: tuple[Row, ...]  # item: GateResult; tags: its badge; note: "min" or "max"
    failed_gates: tuple[GateResult, ...]
    passed_gates: int
    classes: tuple[ClassEntry, ...]  # the class chapters of this page, in reading order
    class_lines: tuple[Row, ...]  # the PDF's table of the classes without a chapter (item: ClassLine)
    class_note: str  # what the page says about the classes it details ("" when it details all)
    unsound_model: bool  # the class galleries describe an unsound model
    probes: Listing  # of Cards
    extra_figures: tuple[Figure, ...]
    config_rows: tuple[tuple[str, Any], ...]
    card_metadata: dict[str, tuple[tuple[str, str], ...]]  # rel_path -> (column, value) shown on its cards
    disagreements: Listing  # the manifest labels that disagree with their folders, in the data set chapter
    explanation: ExplanationLayout | None = None  # None: the explanation check did not run


def report_structure(report: Report, *, pdf: bool = False) -> Structure:
    """Decide what the report shows, in which order, and the rows of its derived tables; ``pdf``: on the PDF's page."""
    ds, check = report.dataset, report.model_check
    splits = tuple((s, sum(c.values())) for s, c in ds.split_counts.items() if sum(c.values()) > 0)
    counts = {name: tuple(ds.split_counts[s].get(name, 0) for s, _ in splits) for name in ds.class_names}

    layout = class_layout(report, pdf=pdf)
    extras = extra_figures(report.figures, audit=report.audit is not None)
    chapters = _chapters(report, extras, others=bool(layout.lines))
    class_lines = tuple(Section("class", c.id, c.section.class_name, True) for c in layout.entries)
    versions = report.run.versions
    kept = check.kept_epoch if check and report.training and check.kept_epoch != len(report.training) else None
    return Structure(
        title=f"Data set audit: {Path(ds.root).name or ds.root}",
        chapters=chapters,
        toc=tuple(replace(c, children=class_lines if c.key == "classes" else None) for c in chapters[1:] if c.shown),
        splits=splits,
        test_images=sum(m.support for m in report.metrics.per_class),
        glance=glance_rows(report, _glance_checks(report)),
        main_caveats=listing(report.caveats, MAIN_CAVEATS),
        skipped_summary=listing(ds.skipped, SUMMARY_SKIPPED),
        class_names=listing(ds.class_names, SUMMARY_CLASSES),
        skipped_all=listing(ds.skipped, DATASET_SKIPPED) if len(ds.skipped) > SUMMARY_SKIPPED else None,
        versions=tuple(sorted(((k, v) for k, v in versions.items() if k != "platform"), key=lambda kv: kv[0].lower())),
        platform=versions.get("platform") or "",
        class_counts=tuple(
            Row(name, (*c, sum(c)), UNDER_REPRESENTED if name in ds.under_represented else ())
            for name, c in counts.items()
        ),
        recipe=report.run.config.get("recipe", "default"),
        kept_epoch=kept,
        metric_rows=tuple(
            Row(m, tags=UNDER_REPRESENTED if m.class_name in ds.under_represented else ())
            for m in report.metrics.per_class
        ),
        audit=_audit(report.audit, report.figures) if report.audit else None,
        changes=_changes(report.changes) if report.changes else None,
        gate_rows=tuple(
            Row(g, tags=(GATE_BADGES[g.passed],), note="min" if g.op == "under" else "max") for g in report.gates
        ),
        failed_gates=tuple(g for g in report.gates if not g.passed),
        passed_gates=sum(g.passed for g in report.gates),
        classes=layout.entries,
        class_lines=layout.lines,
        class_note=layout.note,
        unsound_model=bool(check and check.verdict == "unsound"),
        probes=Listing(
            tuple(Card(p, 1 + bool(p.cam), label=p.top_classes[0][0] if p.top_classes else "") for p in report.probes),
            cam_note=any(p.cam for p in report.probes),
        ),
        extra_figures=extras,
        config_rows=tuple(config_rows(report.run.config)),
        card_metadata=card_metadata(report),
        disagreements=listing(ds.label_disagreements, DATASET_SKIPPED),
        explanation=_explanation(report),
    )


def _glance_checks(report: Report) -> tuple[tuple[str, str, str], ...]:
    """Page 1's rows: the audit's checks (or one row saying it did not run), the heat maps when scored, balance."""
    heat = (EXPLANATION,) if report.explanation_check is not None else ()
    return (*(GLANCE if report.audit else (NO_AUDIT,)), *heat, BALANCE)


def _explanation(report: Report) -> ExplanationLayout | None:
    check = report.explanation_check
    if check is None:
        return None
    return ExplanationLayout(verdict_words(check), EXPLANATION_TONES.get(check.verdict, ""), method_name(check.method))


def _chapters(report: Report, extras: tuple[Figure, ...], *, others: bool) -> tuple[Section, ...]:
    """Every chapter in reading order, with the figures placed in it."""
    figs = report.figures
    return (
        Section("summary", "summary", "Summary", True),
        Section("dataset", "dataset", "Data set", True, _placed(figs, "montage", "class_histogram", "dataset_map")),
        Section("training", "training", "Training", True, _placed(figs, "training_curves") if report.training else ()),
        Section("confusion", "confusion", "Confusion", True, _placed(figs, "confusion_matrix")),
        Section("audit", "audit", "Data set audit", report.audit is not None),
        Section("changes", "changes", "Changes since the last audit", report.changes is not None),
        Section("gates", "gates", "Quality gates", bool(report.gates)),
        Section("classes", "classes", "Classes", True),
        Section("class_table", "other-classes", "Other classes", others),
        Section("probes", "probes", "Probe images", bool(report.probes)),
        Section("figures", "audit-checks", "Other figures" if report.audit else "Audit checks", bool(extras), extras),
        Section("config", "config", "Configuration", True),
        Section("caveats", "caveats", "Caveats", True),
    )


def _figure(figures: dict[str, str], key: str, *, caption: bool = True) -> Figure:
    title = FIGURE_TITLES.get(key) or key.replace("_", " ").capitalize()
    text = FIGURE_CAPTIONS.get(key, "") if caption else ""
    return Figure(figures[key], title, text, FIGURE_SIZES.get(key, "large"), key in HEATMAP_FIGURES)


def _placed(figures: dict[str, str], *keys: str) -> tuple[Figure, ...]:
    return tuple(_figure(figures, key) for key in keys if figures.get(key))


def extra_figures(figures: dict[str, str], *, audit: bool) -> tuple[Figure, ...]:
    """Figures without a place of their own (with no audit, the audit's too), known ones first, without captions."""
    placed = (*PLACED_FIGURES, *(key for *_, keys in AUDIT_SECTIONS for key in keys)) if audit else PLACED_FIGURES
    unplaced = [key for key in (*FIGURE_TITLES, *sorted(figures)) if key in figures and key not in placed]
    return tuple(_figure(figures, key, caption=False) for key in dict.fromkeys(unplaced))  # known keys first


def config_rows(config: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """The configuration as (dotted key, value) rows in its own order; nested dicts give ``train.epochs``."""
    rows: list[tuple[str, Any]] = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows += config_rows(value, f"{name}.")
        else:
            rows.append((name, value))
    return rows


def listing(items: Sequence[Any], limit: int, total: int | None = None, *, cam_note: bool = False) -> Listing:
    """The first ``limit`` items, and how many more of ``total`` (default: all the items) are not shown."""
    shown = tuple(items[:limit])
    return Listing(shown, max((len(items) if total is None else total) - len(shown), 0), cam_note)


def toned(delta: Delta) -> tuple[Delta, str]:
    """A change with its tone: "neg" for a fall, "pos" for a rise, "" for none or one within DELTA_TOLERANCE."""
    d = delta.delta
    return delta, "" if d is None or abs(d) <= DELTA_TOLERANCE else ("neg" if d < 0 else "pos")


def _audit(audit: Audit, figures: dict[str, str]) -> AuditLayout:
    """The audit chapter's sections, in order, and the rows and lists of the checks that ran."""
    sections = []
    for id_, title, (check, *_), what, keys in AUDIT_SECTIONS:
        ran, why = getattr(audit, check) is not None, audit.not_run.get(check, "")
        sections.append(Section(id_.removeprefix("audit-"), id_, title, True, _placed(figures, *keys), ran, what, why))
    reported = {check for _, _, checks, *_ in AUDIT_SECTIONS for check in checks}
    other = tuple((k.replace("_", " ").capitalize(), why) for k, why in audit.not_run.items() if k not in reported)
    parts: dict[str, Any] = _labels(audit.label_issues) if audit.label_issues else {}
    if oc := audit.outliers:
        parts["outliers"] = listing(oc.outliers, oc.shown, oc.total)
    if dup := audit.duplicates:
        parts["pairs"] = listing(dup.pairs, dup.shown)
    if sc := audit.shortcuts:
        few = "too few maps to flag"
        parts["shortcut_rows"] = tuple(
            Row(c, tags=FLAGGED)
            if c.flagged
            else Row(c, note=c.reasons[0] if c.worth_a_look else few if c.n_maps < sc.min_maps else "")
            for c in sc.classes
        )
    if st := audit.stamps:
        parts["stamp_rows"] = tuple(Row(c, tags=FLAGGED if c.flagged else ()) for c in st.classes if c.fixed_cells)
        parts["classes_without_stamps"] = len(st.classes) - len(parts["stamp_rows"])
    if hc := audit.health:
        columns = [check for check, n in hc.counts.items() if n]
        cards = [Card(i, 1, label=", ".join(HEALTH_CHECK_TITLES.get(c, c) for c in i.checks)) for i in hc.issues]
        parts["health_columns"] = tuple(
            (HEALTH_CHECK_TITLES.get(c, c.replace("_", " ")), hc.counts[c]) for c in columns
        )
        parts["health_rows"] = tuple(
            Row(name, tuple(counts.get(c, 0) for c in columns))
            for name, counts in hc.per_class.items()
            if sum(counts.values())
        )
        parts["health_cards"] = listing(cards, hc.shown, hc.total)
    if sl := audit.slices:
        cam = any(m.image.cam for s in sl.slices for m in s.mistakes[: s.shown])
        parts["slice_cards"] = tuple(
            (s, listing([Card(m, 1 + bool(m.image.cam)) for m in s.mistakes], s.shown, cam_note=cam)) for s in sl.slices
        )
    return AuditLayout(tuple(sections), other, audit.not_run.get("near_duplicates", ""), **parts)


def _labels(ls: LabelCheck) -> dict[str, Any]:
    """The label check's per-class rows (classes with suspects, most first) and its two tiers."""
    most = itemgetter(1)  # sorted by it in reverse: largest count first, ties in their order
    flagged = sorted(((name, n) for name, n in ls.per_class.items() if n), key=most, reverse=True)
    suggested = {name: sorted(ls.suggested.get(name, {}).items(), key=most, reverse=True)[:3] for name, _ in flagged}
    rows = tuple(Row(name, (n, ls.class_noise_rates.get(name), tuple(suggested[name]))) for name, n in flagged)
    suspects, review = ls.suspects[: ls.shown], ls.worth_a_look[: ls.review_shown]
    cam_note = any(s.image.cam for s in (*suspects, *review))
    return {
        "label_rows": rows,
        "suspects": listing(ls.suspects, ls.shown, ls.total),
        "review": listing(ls.worth_a_look, ls.review_shown, cam_note=cam_note),
    }


def _changes(ch: Changes) -> ChangesLayout:
    """The changes chapter's headline cells, per-class rows with their status tags, and image lists."""
    le = ch.label_errors
    return ChangesLayout(
        accuracy=toned(ch.accuracy),
        macro_f1=toned(ch.macro_f1),
        image_rows=tuple(Row(r, tags=STATUS_TAGS.get(r.status, ())) for r in ch.dataset.per_class),
        metric_rows=tuple(
            Row(m, tuple(toned(d) for d in (m.precision, m.recall, m.f1)), STATUS_TAGS.get(m.status, ()))
            for m in ch.per_class
        ),
        moved=listing(ch.dataset.moved, REFS_SHOWN, ch.dataset.images_moved),
        new=listing(le.new, REFS_SHOWN),
        resolved=listing(le.resolved, REFS_SHOWN),
    )
