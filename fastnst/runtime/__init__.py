"""The inference layer: image I/O, the ONNX contract, ``Stylizer``, tiling, video and ``fastnst infer``.

No module here imports torch, Lightning or Hydra: numpy, Pillow, onnxruntime (and PyAV for video) only.
"""
