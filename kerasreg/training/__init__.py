"""Training: the whole run (pipeline.py), what it is made of (run_setup.py), and the fitting (fit.py) through one
compiled call per epoch (compiled_epoch.py), run epoch after epoch with the callbacks (epoch_runner.py,
callbacks.py, schedule.py, backup.py)."""
