"""The run directory: its files and atomic writes (files.py), one process per run (lock.py), the checks before a
rerun resumes it (resume.py), and a finished run read back (record.py)."""
