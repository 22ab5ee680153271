"""The data plane: models by name and version (repository.py, versions.py), a request's images within the pixel
budget (image_budget.py), and the one call that owns an inference (dataplane.py). It knows no wire format; what
the server allows is serve/limits.py."""
