"""What kerasreg, export and serve share, in the one package all three may import (it imports none of them):
the artifact contract (contract.py: an export's file names, tensor names and metadata keys), which extra a command
needs (extras.py), an image file as the pixels a model takes (image_files.py, its structure checked by
image_structure.py), a child process that ends with its parent (processes.py), and text made safe to print in one
line (escaping.py). Standard library only, but for image_files.py (Pillow, numpy) and extras.py's metadata reads."""
