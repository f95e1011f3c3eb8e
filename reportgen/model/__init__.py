"""Model layer: backbones, runtime, torchrun, training, predictions, features, the linear probe, their records.

May import: data, config, errors; with analysis.cams, the only torch users.
"""
