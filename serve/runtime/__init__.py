"""The model runtime: an exported file (ONNX or LiteRT) as a `Model` (model.py, over sessions.py), and image bytes
or files as its input (image_input.py). No HTTP, no repository: the library and `serve predict` use it alone."""
