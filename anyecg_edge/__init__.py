"""AnyECG-Edge runtime: canonical preprocessing, records, label specs, and the device pipeline.

Nothing in this package imports torch, TensorFlow, ONNX or onnx2tf.
"""

__version__ = "0.1.0"
