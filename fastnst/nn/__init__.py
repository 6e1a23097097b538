"""The torch layer: style networks, VGG19, losses, per-image optimization, export and the judge.

No module here imports Lightning or Hydra.
"""
