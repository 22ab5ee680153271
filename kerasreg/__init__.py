"""kerasreg: logistic-regression baselines with Keras, tf.distribute, SavedModel and ONNX.

    import kerasreg
    run = kerasreg.train(dataset="digits")   # -> kerasreg.Run; see kerasreg/api.py
    run = kerasreg.Run.load("runs/digits")

Heavy imports (TensorFlow, Keras, tensorflow-datasets) stay inside the functions
that need them, so `import kerasreg` is cheap.
"""

from shared.extras import version

__version__ = version()  # setup.py's, from the installed metadata
__all__ = ["Run", "train"]


def __getattr__(name: str):
    # Lazily: `import kerasreg` stays cheap, and the serving side never loads the training modules.
    if name == "train":
        import kerasreg.train  # the module is the function (kerasreg/train.py, _CallableModule)

        return kerasreg.train
    if name == "Run":
        from kerasreg.run import Run

        return Run
    raise AttributeError(f"module 'kerasreg' has no attribute {name!r}")
