"""Renderers of the report model: HTML (Jinja2) and PDF (WeasyPrint) from the same template and CSS."""
