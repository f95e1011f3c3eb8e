"""Analyses of predictions: pure numpy, except ``cams`` which runs Grad-CAM."""
