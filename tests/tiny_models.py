"""Tiny seeded Keras Conv1D models converted to TFLite, for tests that need a real model file.

Input (1, 5000, 1) as the exported students have; full-integer int8 I/O unless ``int8=False``.
"""

from __future__ import annotations

import numpy as np


def conv1d_tflite(convs: list[tuple[int, int, int]], outputs: int, int8: bool = True, calibration_windows: int = 8) -> bytes:
    """Conv1D layers given as (filters, kernel, stride), global average pooling, a Dense head."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((5000, 1), batch_size=1)
    x = inputs
    for filters, kernel, stride in convs:
        x = tf.keras.layers.Conv1D(filters, kernel, strides=stride, activation="relu")(x)
    x = tf.keras.layers.GlobalAveragePooling1D()(x)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(outputs)(x))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        rng = np.random.default_rng(0)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [rng.standard_normal((1, 5000, 1)).astype(np.float32)] for _ in range(calibration_windows)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()
