"""Data layer: scan and decode a data set, its split, samples and folds, the worker pool, the example's download.

May import: reportgen.config, reportgen.errors.
"""
