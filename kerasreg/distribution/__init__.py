"""Training on several devices and machines: which tf.distribute strategy (strategy.py), where the features live
(placement.py)."""
