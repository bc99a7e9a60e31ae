"""Evaluators that read a model's outputs: image grids, FID / Inception Score with a classifier."""
