"""Formats for other tools: TensorBoard's Projector, safetensors bundles, ONNX graphs,
and TensorBoard training logs. The run folder stays the source of truth; everything
here is written from it (``zspace export RUN --format ...``) or beside it (``RUN/tb/``).

Heavy libraries (onnx, onnxruntime, tensorboard) are optional extras, imported only
when a format asks for them.
"""
