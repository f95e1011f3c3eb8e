"""reportgen: audit an image-classification data set and write the audit as HTML, PDF and JSON."""

__version__ = "0.1.0"
