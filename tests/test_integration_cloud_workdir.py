"""Workdir files go through etils.epath, so gs:// workdirs work as local ones do. Cloud storage
is simulated: epath's gs:// backend is redirected into a local folder (no network here)."""

import json
import os

import numpy as np
import pytest
from etils.epath import testing as epath_testing

from aigc_jax import checkpoint, writers
from aigc_jax.data import tokenizers
from aigc_jax.evaluators import grid

_ROOT = "gs://bucket"


@pytest.fixture
def bucket(tmp_path):
  """gs://bucket/... is tmp_path/...; records which operations reached the gs:// backend."""
  seen = []

  def local(path):
    return str(path).replace(_ROOT, str(tmp_path), 1)

  def redirect(name):
    def fn(original, path, *args, **kw):
      seen.append(name)
      args = [local(a) if str(a).startswith(_ROOT) else a for a in args]
      return original(local(path), *args, **kw)
    return fn

  names = ("open", "exists", "isdir", "listdir", "makedirs", "mkdir", "remove", "rename",
           "replace", "rmtree", "stat", "glob", "walk")
  with epath_testing.mock_epath(**{n: redirect(n) for n in names}):
    yield tmp_path, seen


def test_metrics_plots_and_resume_on_cloud_storage(bucket):
  tmp_path, seen = bucket
  w = writers.MetricWriter(f"{_ROOT}/run", tensorboard=True)  # no TensorBoard off local disks
  for step in (10, 20, 30):
    w.write(step, "train", {"loss": 1.0 / step})
  w.plot()
  assert not (tmp_path / "run" / "tensorboard").exists()
  lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(x)["step"] for x in lines] == [10, 20, 30]
  assert (tmp_path / "run" / "plots" / "loss.png").read_bytes()[:4] == b"\x89PNG"
  # A resume from step 20 drops the later events, as on a local disk.
  writers.MetricWriter(f"{_ROOT}/run", resume_step=20, tensorboard=False)
  assert [e["step"] for e in writers.read_metrics(f"{_ROOT}/run/metrics.jsonl")] == [10, 20]
  assert {"open", "replace", "exists"} <= set(seen)
  assert not list((tmp_path / "run").glob("*.tmp-*"))  # atomic writes leave no temporaries


def test_samples_tokenizer_and_config_on_cloud_storage(bucket):
  tmp_path, _ = bucket
  grid.save(np.zeros((4, 8, 8, 1)), f"{_ROOT}/run/samples/x.png", ncol=2)
  assert (tmp_path / "run" / "samples" / "x.png").exists()
  tok = tokenizers.train("char", ["to be or not to be"])
  tokenizers.save(tok, f"{_ROOT}/run/tokenizer.json")
  assert list(tokenizers.load(f"{_ROOT}/run/tokenizer.json").encode("be")) == list(tok.encode("be"))
  writers.atomic_write(f"{_ROOT}/run/config.json", json.dumps({"seed": 3}))
  assert checkpoint.read_config(f"{_ROOT}/run").seed == 3
  with pytest.raises(Exception, match="has no config.json"):
    checkpoint.read_config(f"{_ROOT}/run/samples")


def test_cloud_checkpoint_directories_stay_urls():
  assert checkpoint._absolute("gs://bucket/run/checkpoints") == "gs://bucket/run/checkpoints"
  assert checkpoint._absolute("run") == os.path.join(os.getcwd(), "run")
