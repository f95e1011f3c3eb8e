"""The report's structure from hand-built Report objects: which chapters, rows, tags and figures it lays out."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from report_factory import NASTY_CLASSES, make_report

from reportgen.data.dataset import SkippedFile
from reportgen.render.structure import Listing, Tag, listing, report_structure, toned
from reportgen.report.audit import Audit
from reportgen.report.comparison import Delta

REPO = Path(__file__).resolve().parents[1]


def _shown(structure) -> list[str]:
    return [c.id for c in structure.chapters if c.shown]


def _chapter(structure, key: str):
    return next(c for c in structure.chapters if c.key == key)


def test_report_without_audit_has_no_audit_chapter_and_its_figures_go_to_audit_checks(tmp_path):
    structure = report_structure(make_report(tmp_path))
    assert structure.audit is None and structure.changes is None and not structure.gate_rows
    assert _shown(structure) == [
        "summary",
        "dataset",
        "training",
        "confusion",
        "classes",
        "probes",
        "audit-checks",
        "config",
        "caveats",
    ]
    extra = _chapter(structure, "figures")
    assert extra.title == "Audit checks"
    assert [f.title for f in extra.figures] == ["Calibration: reliability diagram", "Mean Grad-CAM per class"]
    assert [f.cam_note for f in extra.figures] == [False, True]
    assert all(f.caption == "" for f in extra.figures)  # titled, not captioned, in the extra-figures chapter
    assert [f.size for f in extra.figures] == ["medium", "large"]
    assert structure.extra_figures == extra.figures


def test_report_with_audit_places_its_figures_in_their_sections(tmp_path):
    structure = report_structure(make_report(tmp_path, audit=True, changes=True, gates=True))
    assert _shown(structure) == [
        "summary",
        "dataset",
        "training",
        "confusion",
        "audit",
        "changes",
        "gates",
        "classes",
        "probes",
        "config",
        "caveats",
    ]
    assert not _chapter(structure, "figures").shown and _chapter(structure, "figures").title == "Other figures"
    sections = {s.key: s for s in structure.audit.sections}
    assert list(sections) == [
        "labels",
        "outliers",
        "duplicates",
        "calibration",
        "shortcuts",
        "stamps",
        "health",
        "slices",
    ]
    assert [s.id for s in structure.audit.sections][0] == "audit-labels"
    assert all(s.ran for s in sections.values())
    assert [f.title for f in sections["calibration"].figures] == ["Calibration: reliability diagram"]
    assert sections["calibration"].figures[0].caption.startswith("Reliability diagram: each bar is the accuracy")
    assert [f.cam_note for f in sections["shortcuts"].figures] == [True]


def test_unknown_figures_go_to_the_extra_figures_chapter_after_known_ones(tmp_path):
    report = make_report(tmp_path, figures=("montage", "zeta_plot", "label_issues", "mean_cams"))
    structure = report_structure(report)
    assert [f.title for f in structure.extra_figures] == ["Mean Grad-CAM per class", "Label issues", "Zeta plot"]
    assert [f.title for f in _chapter(structure, "dataset").figures] == [
        "Montage of nine random images with their labels"
    ]
    assert _chapter(structure, "dataset").figures[0].caption == "Nine random images of the data set with their labels."
    assert _chapter(structure, "training").figures == ()  # the report has no training_curves figure


def test_the_data_set_map_is_placed_in_the_data_set_chapter_with_its_caption(tmp_path):
    report = make_report(tmp_path, figures=("montage", "class_histogram", "dataset_map", "reliability"))
    structure = report_structure(report)
    placed = _chapter(structure, "dataset").figures
    assert [f.path for f in placed] == [
        "figures/montage.png",
        "figures/class_histogram.png",
        "figures/dataset_map.png",
    ]
    caption = placed[-1].caption
    assert "axes mean nothing" in caption and "suspected label errors" in caption and "outliers" in caption
    assert placed[-1].title.startswith("Map of the data set") and placed[-1].size == "large"
    assert "figures/dataset_map.png" not in [f.path for f in structure.extra_figures]
    without = report_structure(make_report(tmp_path / "none", figures=("montage", "class_histogram")))
    assert len(_chapter(without, "dataset").figures) == 2


def test_checkpoint_run_places_no_training_curves(tmp_path):
    structure = report_structure(make_report(tmp_path, training=False))
    assert _chapter(structure, "training").figures == ()
    assert "training_curves" not in [f.path for f in structure.extra_figures]  # it still has a place: not extra
    assert structure.kept_epoch is None


def test_not_run_checks_without_a_section_are_listed_as_other(tmp_path):
    not_run = {
        "label_issues": "switched off",
        "embeddings": "no <features>",
        "near_duplicates": "no features",
        "image_hashes": "skipped",
    }
    report = dataclasses.replace(make_report(tmp_path), audit=Audit(not_run=not_run))
    layout = report_structure(report).audit
    assert layout.other_not_run == (("Embeddings", "no <features>"), ("Image hashes", "skipped"))
    assert layout.near_not_run == "no features"  # reported by the duplicates section, not as "other"
    labels = layout.sections[0]
    assert (labels.ran, labels.what, labels.reason) == (False, "label check", "switched off")
    assert all(not s.ran for s in layout.sections)
    assert {s.reason for s in layout.sections[1:]} == {""}


def test_class_count_rows_end_with_their_totals_and_drop_empty_splits(tmp_path):
    report = make_report(tmp_path)
    ds = report.dataset
    counts = {**ds.split_counts, "val": dict.fromkeys(ds.class_names, 0)}
    structure = report_structure(dataclasses.replace(report, dataset=dataclasses.replace(ds, split_counts=counts)))
    assert [s for s, _ in structure.splits] == ["train", "test"]
    assert dict(structure.splits) == {s: sum(counts[s].values()) for s in ("train", "test")}
    assert [r.item for r in structure.class_counts] == list(NASTY_CLASSES)
    for row in structure.class_counts:
        *per_split, total = row.cells
        assert per_split == [counts["train"][row.item], counts["test"][row.item]]
        assert total == sum(per_split)
    assert sum(r.cells[-1] for r in structure.class_counts) == sum(n for _, n in structure.splits)


def test_under_represented_classes_are_tagged_everywhere(tmp_path):
    structure = report_structure(make_report(tmp_path))
    tag = Tag("under-represented", "warn")
    flagged = NASTY_CLASSES[1]
    assert [r.item for r in structure.class_counts if tag in r.tags] == [flagged]
    assert [r.item.class_name for r in structure.metric_rows if r.tags] == [flagged]
    assert [c.section.class_name for c in structure.classes if c.tags == (tag,)] == [flagged]


def test_contents_list_the_shown_chapters_and_the_classes(tmp_path):
    structure = report_structure(make_report(tmp_path, gates=True))
    assert [e.id for e in structure.toc] == [c for c in _shown(structure) if c != "summary"]
    classes = next(e for e in structure.toc if e.key == "classes")
    assert [(c.id, c.title) for c in classes.children] == [(f"class-{i}", n) for i, n in enumerate(NASTY_CLASSES, 1)]
    assert all(e.children is None for e in structure.toc if e.key != "classes")
    assert [c.id for c in structure.classes] == [c.id for c in classes.children]


def test_gates_get_badges_bounds_and_counts(tmp_path):
    structure = report_structure(make_report(tmp_path, gates=True))
    assert [(r.tags[0].text, r.note) for r in structure.gate_rows] == [
        ("passed", "min"),
        ("failed", "min"),
        ("failed", "max"),
    ]
    assert structure.passed_gates == 1 and len(structure.failed_gates) == 2


def test_skipped_files_are_listed_on_page_one_up_to_a_limit(tmp_path):
    report = make_report(tmp_path)
    assert report_structure(report).skipped_summary == Listing(report.dataset.skipped, 0)
    assert report_structure(report).skipped_all is None
    many = tuple(SkippedFile(f"c/{i}.jpg", "bad") for i in range(12))
    structure = report_structure(dataclasses.replace(report, dataset=dataclasses.replace(report.dataset, skipped=many)))
    assert structure.skipped_summary == Listing(many[:8], 4)
    assert structure.skipped_all == Listing(many, 0)


def test_audit_rows_and_listings(tmp_path):
    report = make_report(tmp_path, audit=True)
    layout = report_structure(report).audit
    first, last = NASTY_CLASSES[0], NASTY_CLASSES[-1]
    assert [(r.item, r.cells) for r in layout.label_rows] == [(first, (5, 0.1, ((last, 5),)))]
    assert (len(layout.suspects.items), layout.suspects.more) == (4, 1)
    assert (len(layout.review.items), layout.review.more, layout.review.cam_note) == (2, 1, True)
    assert (len(layout.pairs.items), layout.pairs.more) == (3, 1)
    assert [r.tags for r in layout.shortcut_rows] == [(Tag("flagged", "bad"),), (), ()]
    assert [r.item.class_name for r in layout.stamp_rows] == [last] and layout.classes_without_stamps == 2
    assert layout.health_columns == (("very small", 1), ("very dark", 1))
    assert [(r.item, r.cells) for r in layout.health_rows] == [(first, (1, 1))]
    assert [c.label for c in layout.health_cards.items] == ["very small", "very dark"]


def test_label_rows_sort_by_suspects_and_keep_three_suggestions(tmp_path):
    report = make_report(tmp_path, audit=True)
    ls = report.audit.label_issues
    a, b, c = NASTY_CLASSES
    ls = dataclasses.replace(
        ls, per_class={a: 1, b: 3, c: 0}, suggested={b: {"p": 1, "q": 4, "r": 2, "s": 3}, a: {c: 1}}
    )
    layout = report_structure(dataclasses.replace(report, audit=dataclasses.replace(report.audit, label_issues=ls)))
    assert [r.item for r in layout.audit.label_rows] == [b, a]
    assert layout.audit.label_rows[0].cells[2] == (("q", 4), ("s", 3), ("r", 2))


def test_shortcut_classes_with_too_few_maps_say_so(tmp_path):
    report = make_report(tmp_path, audit=True)
    sc = report.audit.shortcuts
    classes = (sc.classes[0], dataclasses.replace(sc.classes[1], n_maps=2), sc.classes[2])
    report = dataclasses.replace(
        report, audit=dataclasses.replace(report.audit, shortcuts=dataclasses.replace(sc, classes=classes))
    )
    assert [r.note for r in report_structure(report).audit.shortcut_rows] == ["", "too few maps to flag", ""]


def test_changes_rows_carry_status_tags_and_delta_tones(tmp_path):
    layout = report_structure(make_report(tmp_path, changes=True)).changes
    assert layout.accuracy[1] == "pos" and layout.macro_f1[1] == "neg"
    first = layout.metric_rows[0]
    assert [tone for _, tone in first.cells] == ["neg", "pos", "pos"]
    assert [tone for _, tone in layout.metric_rows[1].cells] == ["", "pos", "pos"]
    removed = layout.metric_rows[-1]
    assert removed.tags == (Tag("class removed", "warn"),) and [t for _, t in removed.cells] == ["", "", ""]
    assert [r.tags for r in layout.image_rows][-1] == (Tag("class removed", "warn"),)
    assert len(layout.moved.items) == 1 and layout.moved.more == 0


@pytest.mark.parametrize(("delta", "tone"), [(-0.001, "neg"), (-0.0004, ""), (0.0, ""), (0.0006, "pos"), (None, "")])
def test_delta_tones_ignore_changes_that_print_as_zero(delta, tone):
    assert toned(Delta(0.5, 0.5, delta))[1] == tone


def test_listing_counts_what_is_not_shown():
    assert listing((1, 2, 3), 2) == Listing((1, 2), 1)
    assert listing((1, 2, 3), 5) == Listing((1, 2, 3), 0)
    assert listing((1, 2), 20, total=30) == Listing((1, 2), 28)  # a list that holds only the first of 30


def test_structure_imports_neither_jinja_nor_torch(tmp_path):
    code = "import sys, reportgen.render.structure; print(sorted({'jinja2', 'torch'} & set(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_class_galleries_carry_their_cards_badges_and_colour_bar(tmp_path):
    structure = report_structure(make_report(tmp_path))
    entry = structure.classes[0]
    assert [c.state for c in entry.top.items] == ["correct", "correct"]
    assert [c.tiles for c in entry.bottom.items] == [3, 2, 2]  # a mistake: photo and both overlays
    wrong = entry.bottom.items[0]
    label, leak = Tag(f"label error? likely {NASTY_CLASSES[1]}", "bad"), Tag("copy in train split: leak", "bad")
    assert wrong.badges == (label, leak)
    assert all(c.badges == () for c in (*entry.top.items, *entry.bottom.items[1:]))
    assert entry.colour_bar
    assert not report_structure(make_report(tmp_path / "nocam", cams=False)).classes[0].colour_bar


def test_a_class_shown_whole_has_no_bottom_gallery(tmp_path):
    report = make_report(tmp_path)
    first = report.classes[0]
    whole = dataclasses.replace(first, top=(*first.top, *first.bottom), bottom=(), complete=True)
    no_top = dataclasses.replace(report.classes[1], top=())  # --top-k 0
    structure = report_structure(dataclasses.replace(report, classes=(whole, no_top, *report.classes[2:])))
    one, two, three = structure.classes
    assert len(one.top.items) == 5 and one.bottom is None
    assert two.top is None and two.bottom is not None
    assert three.top is not None and three.bottom is not None
    empty = dataclasses.replace(first, top=(), bottom=(), complete=True)  # no test images at all
    alone = report_structure(dataclasses.replace(report, classes=(empty,))).classes[0]
    assert alone.top == Listing(()) and alone.bottom is None and not alone.colour_bar


def test_every_flag_kind_has_a_badge():
    from reportgen.render.galleries import FLAG_BADGES, badges
    from reportgen.report import FLAG_KINDS, ImageFlag

    assert set(FLAG_BADGES) == set(FLAG_KINDS)
    assert badges((ImageFlag("label_review", "<b>x</b>", 0.5), ImageFlag("health", "dark"))) == (
        Tag("label worth a look: <b>x</b>?", "warn"),
        Tag("image health", "warn"),
    )


# ---------------------------------------------------------------- page 1: the audit at a glance


def _glance(report) -> list[tuple]:
    return [(r.check, r.verdict, r.count, r.tone, r.anchor) for r in report_structure(report).glance]


def test_glance_has_a_row_per_audit_section_then_class_balance(tmp_path):
    report = make_report(tmp_path, audit=True)
    first, middle, last = NASTY_CLASSES
    assert _glance(report) == [
        ("Suspected label errors", "5 likely wrong labels, 3 worth a look", 5, "warn", "audit-labels"),
        ("Belongs to no class?", "2 images far from every class", 2, "warn", "audit-outliers"),
        (
            "Duplicates and leakage",
            "4 pairs of copies: 1 across splits (leakage) and 1 across classes (one label is wrong)",
            4,
            "bad",
            "audit-duplicates",
        ),
        ("Calibration", "scores over-confident (ECE 0.123): read them as a ranking", None, "warn", "audit-calibration"),
        ("Shortcut check", f"1 class flagged: {first}", 1, "warn", "audit-shortcuts"),
        ("Fixed patterns (stamps)", f"1 class flagged: {last}", 1, "warn", "audit-stamps"),
        ("Image health", "2 images fail a check (1 very small, 1 very dark)", 2, "warn", "audit-health"),
        (
            "Where the model fails",
            "1 slice where the model fails more often; strongest: camera = <i>phone_b</i>",
            1,
            "warn",
            "audit-slices",
        ),
        ("Class balance", f"1 class under-represented: {middle} (50 images)", 1, "warn", "dataset"),
    ]
    sections = {s.id for s in report_structure(report).audit.sections} | {
        c.id for c in report_structure(report).chapters
    }
    assert all(r.anchor in sections for r in report_structure(report).glance)


def test_glance_without_the_audit_has_one_row_for_it(tmp_path):
    report = dataclasses.replace(
        make_report(tmp_path), dataset=dataclasses.replace(make_report(tmp_path).dataset, under_represented=())
    )
    assert _glance(report) == [
        ("Data-set audit", "did not run (--no-audit)", None, "", ""),
        ("Class balance", "no class under-represented", 0, "good", "dataset"),
    ]


def test_glance_says_why_a_check_did_not_run_and_what_nothing_found_means(tmp_path):
    report = make_report(tmp_path, audit=True)
    audit = report.audit
    few_maps = tuple(dataclasses.replace(c, n_maps=1, flagged=False, measured=False) for c in audit.shortcuts.classes)
    quiet = dataclasses.replace(
        audit,
        label_issues=None,
        duplicates=dataclasses.replace(audit.duplicates, total=0, across_splits=0, across_classes=0, pairs=()),
        calibration=dataclasses.replace(audit.calibration, readable_as_probabilities=True, ece=0.0412),
        shortcuts=dataclasses.replace(audit.shortcuts, classes=few_maps, flagged=()),
        health=dataclasses.replace(audit.health, total=0, issues=()),
        not_run={"label_issues": "switched off (--label-check off)"},
    )
    rows = {row[0]: row[1:4] for row in _glance(dataclasses.replace(report, audit=quiet))}
    assert rows["Suspected label errors"] == ("did not run: switched off (--label-check off)", None, "")
    assert rows["Duplicates and leakage"] == ("no copies", 0, "good")
    assert rows["Calibration"] == ("scores readable as probabilities (ECE 0.041)", None, "good")
    assert rows["Shortcut check"] == ("no class has the 5 Grad-CAM maps needed to judge it", None, "")
    assert rows["Image health"] == ("no problem found", 0, "good")


def test_page_one_shows_the_first_caveats_and_counts_the_rest(tmp_path):
    report = dataclasses.replace(make_report(tmp_path), caveats=("a", "b", "c", "d", "e"))
    caveats = report_structure(report).main_caveats
    assert (caveats.items, caveats.more) == (("a", "b", "c"), 2)


def test_a_check_without_glance_words_still_gets_its_row(tmp_path):
    from reportgen.narrative.glance import glance_rows

    report = make_report(tmp_path, audit=True)
    audit = dataclasses.replace(report.audit)
    object.__setattr__(audit, "toy", object())  # a check added in the documented files only
    rows = glance_rows(dataclasses.replace(report, audit=audit), (("toy", "Toy check", "audit-toy"),))
    assert [(r.verdict, r.count, r.tone) for r in rows] == [("ran: see its section", None, "")]
