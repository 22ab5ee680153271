"""kerasreg: logistic-regression baselines with Keras, tf.distribute, SavedModel and ONNX.

Heavy imports (TensorFlow, Keras, tensorflow-datasets) stay inside the functions
that need them, so `import kerasreg` is cheap.
"""

from contract.extras import version

__version__ = version()  # setup.py's, from the installed metadata
