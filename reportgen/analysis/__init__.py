"""Analysis layer (facts): metrics, the model check and the data checks, pure functions; cams runs Grad-CAM.

May import: model, data, config, errors; torch and pytorch_grad_cam only in cams.
"""
