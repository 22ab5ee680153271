"""`--l2 auto`: the strengths it walks (grid.py), the walk itself (path.py), and its one entry point (choose.py)."""
