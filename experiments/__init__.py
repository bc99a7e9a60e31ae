"""Paper-style experiments: each module has get_config(arg) and a docstring with its results."""
