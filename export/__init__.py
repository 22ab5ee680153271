"""export: a kerasreg run -> SavedModel and ONNX (+ int8), validated and self-describing.

    python -m export runs/digits --out exports/digits [--quantize int8] [--overwrite]

Entry point `export_run` in export/exporter.py; imports `kerasreg`, never `serve`.
"""
