"""Tests run on CPU with 8 simulated devices, so every sharding path runs in CI."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# One compilation cache for the whole session, its pytest-xdist workers and the processes the
# tests start: a step compiled for a straight run is read back for its crashed and resumed twins
# instead of compiled again. It starts empty each session, so nothing outlives a run.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="aigc_jax_test_jit_")
  atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
# The tests' models are tiny, so compiling costs more than running: LLVM's optimisations off cut
# a tiny U-Net run by a fifth (55 s to 43 s) and left a compute-bound test as fast (84 s, 87 s).
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_backend_optimization_level=0").strip()

import jax  # noqa: E402  (must follow the environment set-up above)

jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_numpy_rank_promotion", "raise")
# Report every array a jitted function closes over (setup.cfg turns a jax.Array among them into
# an error): from jax 0.12.1 such a constant keeps its device placement and clashes with the
# sharded arguments beside it. The option is new in jax 0.12; older versions embed constants.
if hasattr(jax.config, "jax_captured_constants_warn_bytes"):
  jax.config.update("jax_captured_constants_warn_bytes", 0)

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO), "shared", "data")


# Under CI (CI=true) a skip is a failure: a missing data folder or package there is a broken
# install, not a reason to test less. Only these skips are expected there: CI installs no CUDA.
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
EXPECTED_IN_CI = ("CUDA plugin is not installed",)


def _fail_unexpected_skip(report) -> None:
  if CI and report.skipped and not hasattr(report, "wasxfail"):
    reason = str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr)
    if not any(ok in reason for ok in EXPECTED_IN_CI):
      report.outcome = "failed"
      report.longrepr = f"skipped under CI, where nothing may be missing: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
  outcome = yield
  _fail_unexpected_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
  outcome = yield
  _fail_unexpected_skip(outcome.get_result())


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


def pytest_terminal_summary(terminalreporter):
  """Say how many tests were skipped and why, so a shrinking suite is seen (-ra lists each)."""
  skipped = terminalreporter.stats.get("skipped", [])
  reasons = {}
  for report in skipped:
    reason = str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr)
    reasons[reason] = reasons.get(reason, 0) + 1
  terminalreporter.write_line(f"{len(skipped)} skipped" + (" (CI=true)" if CI else ""))
  for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
    terminalreporter.write_line(f"  {count} x {reason}")
