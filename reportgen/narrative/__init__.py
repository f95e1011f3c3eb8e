"""Narrative layer (words): every sentence the report says about its numbers, from the report model alone.

May import: report and the layers below it; not compare, its sibling.

Facts -> sentences: every word the report says about its numbers, generated from them alone (pure).

``narrate(report)`` writes the words into a :class:`Narrative`; ``with_narrative(report, narrative)`` puts
them into the report's fields. The facts the words rest on (under-represented classes, confusions) must be
in the report first: ``reportgen.assemble.report.with_class_facts``. The modules: ``classes`` (a paragraph per
class), ``findings`` (the summary's key findings), ``caveats``, ``model`` (the model check's verdict),
``audit`` (the audit chapter's rules and meanings), ``glance`` (page 1's result of each check, worded when
the structure lays the table out) and ``format`` (numbers as words, shared with the templates' filters).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reportgen.analysis.model_check import UNSOUND
from reportgen.narrative.caveats import caveats
from reportgen.narrative.classes import CONFIDENT, class_narrative, selection_notes
from reportgen.narrative.dataset import split_sentence
from reportgen.narrative.explanation import explanation_notes, explanation_verdict, explanation_warning
from reportgen.narrative.findings import UNDER_REPRESENTED_RULE, key_findings
from reportgen.narrative.galleries import GalleryWords, gallery_words
from reportgen.narrative.model import UNSOUND_CAVEAT, UNSOUND_FINDING, model_notes, model_verdict, training_length

if TYPE_CHECKING:
    from reportgen.report import ClassSection, Report
    from reportgen.report.audit import ClassAuditFacts

__all__ = ["Narrative", "narrate", "with_narrative"]


@dataclass(frozen=True)
class Narrative:
    """Every sentence the report gets, before the unsound-model warnings are added."""

    class_paragraphs: dict[str, tuple[str, ...]]  # class name -> its paragraph's sentences
    findings: tuple[str, ...]  # up to 5 key findings for the summary
    caveats: tuple[str, ...]
    under_represented_rule: str  # the rule behind ``dataset.under_represented``, in words
    model_verdict: str = ""  # one sentence on the model check; empty when it did not run
    model_notes: tuple[str, ...] = ()  # one sentence per problem it found
    galleries: dict[str, GalleryWords] = field(default_factory=dict)  # class name -> its galleries' headings
    selection_notes: tuple[str, str] = ("", "")  # the PDF's and the HTML's words on the classes the PDF details
    split_sentence: str = ""  # where the split and labels came from (``dataset.split_sentence``)
    explanation: tuple[str, tuple[str, ...], str] = ("", (), "")  # the explanation check's verdict, notes, warning
    training_length: str = ""  # why training ran as long as it did (``--patience``)


def narrate(
    report: Report, facts: Mapping[str, ClassAuditFacts] | None = None, *, confident: float = CONFIDENT
) -> Narrative:
    """The report's words, from its numbers, its class facts and its audit.

    Args:
        report: the report with metrics, sections, galleries, model check, audit and the class facts of
            ``reportgen.assemble.report.with_class_facts``.
        facts: class name -> what the data-defect checks found (``reportgen.assemble.audit.class_facts``); None
            when the audit did not run.
        confident: score above which a misclassified gallery image counts as a confident mistake.
    """
    facts = facts or {}
    names = report.dataset.class_names
    total_test = sum(int(sum(row)) for row in report.metrics.confusion)
    shortcuts = report.audit.shortcuts if report.audit else None
    heat = {c.class_name: c for c in shortcuts.classes} if shortcuts else {}
    paragraphs = {
        s.class_name: class_narrative(
            s,
            total_test=total_test,
            class_names=names,
            facts=facts.get(s.class_name),
            heat=heat.get(s.class_name),
            metrics=report.metrics,
            confident=confident,
        )
        for s in report.classes
    }
    calibration = report.audit.calibration if report.audit else None
    check = report.model_check
    return Narrative(
        class_paragraphs=paragraphs,
        findings=key_findings(report, facts=facts, confident=confident),
        caveats=caveats(report, calibrated=calibration.readable_as_probabilities if calibration else None),
        under_represented_rule=UNDER_REPRESENTED_RULE,
        model_verdict=model_verdict(check) if check else "",
        model_notes=model_notes(check) if check else (),
        galleries={s.class_name: gallery_words(s) for s in report.classes},
        selection_notes=selection_notes(report.pdf_classes) if report.pdf_classes else ("", ""),
        split_sentence=split_sentence(report.dataset),
        explanation=_explanation_words(report),
        training_length=training_length(
            (report.training_start_val_loss, *(e.val_loss for e in report.training)),
            report.run.config.get("train") or {},
        )
        if report.training
        else "",
    )


def _explanation_words(report: Report) -> tuple[str, tuple[str, ...], str]:
    check = report.explanation_check
    if check is None:
        return "", (), ""
    return explanation_verdict(check), explanation_notes(check), explanation_warning(check)


def with_narrative(report: Report, narrative: Narrative) -> Report:
    """A copy of ``report`` with the words of ``narrative`` in its fields.

    Sets each section's ``narrative`` and gallery headings, ``findings``, ``caveats``, ``pdf_classes``' notes,
    ``dataset.under_represented_rule``,
    ``dataset.split_sentence`` and, when the model was checked, ``model_verdict`` and ``model_notes``.
    With an unsound model the class paragraphs and the caveats open with a warning and the first finding is
    marked.
    """
    check = report.model_check
    unsound = check is not None and check.verdict == UNSOUND
    lead = (UNSOUND_CAVEAT,) if unsound else ()
    findings = narrative.findings
    if unsound:
        findings = tuple(f"{UNSOUND_FINDING} {f}" if i == 0 else f for i, f in enumerate(findings))
    report = dataclasses.replace(
        report,
        dataset=dataclasses.replace(
            report.dataset,
            under_represented_rule=narrative.under_represented_rule,
            split_sentence=narrative.split_sentence,
        ),
        classes=tuple(
            _with_gallery_words(
                dataclasses.replace(s, narrative=(*lead, *narrative.class_paragraphs.get(s.class_name, ()))),
                narrative.galleries.get(s.class_name),
            )
            for s in report.classes
        ),
        findings=findings,
        caveats=(*lead, *narrative.caveats),
        explanation_verdict=narrative.explanation[0],
        explanation_notes=narrative.explanation[1],
        explanation_warning=narrative.explanation[2],
        training_length=narrative.training_length,
    )
    if report.pdf_classes:
        pdf, html = narrative.selection_notes
        report = dataclasses.replace(
            report, pdf_classes=dataclasses.replace(report.pdf_classes, pdf_note=pdf, html_note=html)
        )
    if check is None:
        return report
    return dataclasses.replace(report, model_verdict=narrative.model_verdict, model_notes=narrative.model_notes)


def _with_gallery_words(section: ClassSection, words: GalleryWords | None) -> ClassSection:
    """The section with its galleries' headings and leads (GalleryWords' fields are ClassSection's)."""
    return section if words is None else dataclasses.replace(section, **dataclasses.asdict(words))
