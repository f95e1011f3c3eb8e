"""Data layer: read a data set in its layout (class folders, split folders, a manifest) with metadata; decode, split.

May import: reportgen.config, reportgen.errors.
"""
