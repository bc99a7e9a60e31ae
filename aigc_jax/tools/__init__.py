"""Command-line tools, `python -m aigc_jax.tools.NAME`: compile (ahead of time for TPU slices and
H100), quantize (int8 after training), prepare (a data set without training), scorer (the
classifiers FID and IS score with), sample (`python -m aigc_jax.sample`), scaling (the scaling
study's fits and plots) and sweep (grids of runs). With `aigc_jax.main`, the only modules that
may import the trainer.
"""
