"""What a run reports: the test metrics (metrics.py, calibration.py) and the pictures (run_pictures.py: which a run
draws; figures.py: what each shows; drawing.py: Pillow's primitives they are drawn with)."""
