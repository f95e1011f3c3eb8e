"""Assembly layer: the Report built once from the stage results: facts, audit views, words, comparisons.

May import: narrative, compare, report and the layers below them.
"""
