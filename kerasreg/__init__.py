"""kerasreg: logistic-regression baselines with Keras, tf.distribute, SavedModel and ONNX.

Heavy imports (TensorFlow, Keras, tensorflow-datasets) stay inside the functions
that need them, so `import kerasreg` is cheap.
"""

__version__ = "0.1.0"
