"""What a run reports: the test metrics (metrics.py) and the pictures (pictures.py, drawn by plots.py on charts.py)."""
