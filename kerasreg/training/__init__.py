"""Training's parts: what a run is made of before its first epoch (setup.py), the fitting (fit.py) through one
compiled call per epoch (compiled_epoch.py, gram_descent.py), run epoch after epoch with the callbacks
(epoch_runner.py, callbacks.py, schedule.py, backup.py, progress.py), and a cluster's agreement (agreement.py). The
whole run, start to finish, is kerasreg/pipeline.py."""
