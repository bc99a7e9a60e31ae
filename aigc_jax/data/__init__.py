"""Data: tfds builders for local corpora and the catalog, preprocessing ops, grain pipelines."""
