"""Render layer: structure, HTML (jinja2), PDF (WeasyPrint), figures (matplotlib), image assets, output folder.

May import: assemble and every layer below it.
"""
