"""The data-set chapter's words: where the split and the labels came from, and what a manifest disagreed with."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reportgen.narrative.format import fmt_count, fmt_plural, join_words

if TYPE_CHECKING:
    from reportgen.report import DatasetSummary

SPLIT_WORDS = {"train": "train", "val": "validation", "test": "test"}


def split_sentence(ds: DatasetSummary) -> str:
    """Where the split and the labels came from, and the images per split.

    E.g. "Split as given by the folders train/, validation/, test/: 600 / 341 / 372 images (train / validation / test)."
    """
    totals = [(s, sum(c.values())) for s, c in ds.split_counts.items() if sum(c.values()) > 0]
    counts = " / ".join(fmt_count(n) for _, n in totals)
    names = " / ".join(SPLIT_WORDS.get(s, s) for s, _ in totals)
    if ds.split_source == "folders":
        folders = ", ".join(f"{f}/" for f in ds.split_folders)
        text = f"Split as given by the folders {folders}: {counts} images ({names})."
    elif ds.split_source == "manifest":
        text = f"Split as given by the split column of {ds.manifest}: {counts} images ({names})."
    else:
        text = f"Split per class at random (seeded) into {names}: {counts} images."
    if ds.manifest:
        role = "Labels and metadata" if ds.layout == "manifest" else "Metadata"
        text += f" {role} from {ds.manifest} (columns {', '.join(ds.manifest_columns)})."
    if ds.val_carved:
        text += " No validation split was given: it was carved from the training images (seeded, per class)."
    if ds.classes_without_test:
        missing = join_words(ds.classes_without_test)
        text += f" The test split has no image of {missing}, so the test metrics say nothing about them."
    return text


def disagreement_finding(ds: DatasetSummary) -> str:
    """A key finding when the manifest's labels disagree with the class folders ("" when they agree)."""
    found = ds.label_disagreements
    if not found:
        return ""
    first = found[0]
    return (
        f"{fmt_plural(len(found), 'image')} in {ds.manifest} {'is' if len(found) == 1 else 'are'} labelled "
        f"differently from {'its' if len(found) == 1 else 'their'} class folder (e.g. {first.rel_path}: folder "
        f"{first.folder_label}, {ds.manifest} {first.manifest_label}); the folders' labels were audited."
    )
