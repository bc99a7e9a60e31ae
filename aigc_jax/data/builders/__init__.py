"""Local tfds builders: `aigc_jax/data/builders/<name>.py` defines `Builder` for data set <name>.

Each reads raw files from a data directory (`config.data.data_dir` or `$AIGC_JAX_DATA`, laid out
like `../shared/data/`) and writes array_record, readable with `tfds.data_source` without
TensorFlow. A module may define `check_raw(raw_dir, builder_config)` to fail early and clearly, and
`needs_raw(builder_config)` when only some configs read files.
"""
