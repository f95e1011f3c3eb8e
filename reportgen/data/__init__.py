"""Data layer: read a data set in its layout with its metadata, decode it; its split, samples, folds, workers.

Layouts: class folders, split folders, a manifest (``layouts.py``). Also the worker pool and the example's download.

May import: reportgen.config, reportgen.errors.
"""
