"""Comparison layer: quality gates and the changes since a baseline run, computed on typed Reports.

May import: report and the layers below it; not narrative, its sibling.
"""
