"""export: a kerasreg run -> SavedModel, ONNX, and on request LiteRT and plain C (+ int8 twins), validated and
self-describing.

    python -m export runs/digits --out exports/digits [--quantize int8] [--litert] [--c] [--overwrite]

Entry point `export_run` in export/exporter.py. Imports `kerasreg` and the shared
`contract` package, never `serve`.
"""
