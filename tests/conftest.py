"""Tests run on CPU with 8 simulated devices, so every sharding path runs in CI."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402  (must follow the environment set-up above)

jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_numpy_rank_promotion", "raise")

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO), "shared", "data")


@pytest.fixture(scope="session")
def data_dir():
  """Real raw files: $AIGC_JAX_DATA, else ../shared/data beside the repository."""
  path = os.environ.get("AIGC_JAX_DATA") or SHARED_DATA
  if not os.path.isdir(os.path.join(path, "mnist")):
    pytest.skip(f"no MNIST IDX files under {path}; set AIGC_JAX_DATA")
  return path


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
  """One prepared-data folder for the whole session, so each data set is built once."""
  return str(tmp_path_factory.mktemp("tfds"))
