"""The data plane: models by name and version (repository.py, versions.py), what a request may ask for (limits.py,
image_budget.py), and the one call that owns an inference (dataplane.py). It knows no wire format."""
