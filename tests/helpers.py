"""Small configs and readers shared by the tests."""

import json
import os

import numpy as np
import orbax.checkpoint as ocp

from experiments import mnist1d


def tiny_config(tfds_dir: str, **train):
  """MNIST-1D MLP, a handful of steps: the cheapest real run of the whole loop."""
  c = mnist1d.get_config()
  c.sweep = ()
  c.model.name = "mlp"
  c.data.tfds_dir = tfds_dir
  c.data.batch_size = 64
  c.data.eval_batch_size = 200
  c.optim.lr = 3e-3
  c.train.update(dict(num_steps=20, log_every_steps=5, eval_every_steps=10,
                      checkpoint_every_steps=10, progress_bar=False))
  c.train.update(train)
  return c


def train_classifier(data_dir: str, tfds_dir: str, workdir: str) -> str:
  """A small real MNIST classifier (150 steps, > 90% on test), to score generated images."""
  from aigc_jax import train  # pylint: disable=import-outside-toplevel
  from experiments import cnn_mnist  # pylint: disable=import-outside-toplevel
  c = cnn_mnist.get_config("quick")
  c.data.data_dir, c.data.tfds_dir = data_dir, tfds_dir
  c.train.update(dict(num_epochs=0.0, num_steps=150, eval_every_steps=150,
                      checkpoint_every_steps=150, progress_bar=False))
  assert train.run(c, workdir)["test_accuracy"] > 0.9
  return workdir


def metrics(workdir: str, split: str = "train") -> list[dict]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [e for e in map(json.loads, f) if e["split"] == split]


def summary(workdir: str) -> dict:
  with open(os.path.join(workdir, "summary.json")) as f:
    return json.load(f)


def final_state(workdir: str):
  """(step, the raw train state of the latest checkpoint as nested dicts of numpy arrays)."""
  import jax  # pylint: disable=import-outside-toplevel
  mngr = ocp.CheckpointManager(os.path.join(workdir, "checkpoints"))
  step = mngr.latest_step()
  path = os.path.join(workdir, "checkpoints", str(step), "state")
  ckptr = ocp.StandardCheckpointer()
  # Onto one local device, whatever devices or processes saved it.
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                        ckptr.metadata(path).item_metadata.tree,
                        is_leaf=lambda m: hasattr(m, "shape"))
  return step, jax.tree.map(np.asarray, ckptr.restore(path, target))


def final_params(workdir: str):
  """The raw parameter arrays of the latest checkpoint (numpy)."""
  step, raw = final_state(workdir)
  return step, raw["params"]


def crash_and_resume(config, tmp_path, monkeypatch, after_batches: int = 4):
  """Runs `config` straight through, then again with a crash after `after_batches` batches and
  a rerun of the same command; returns (straight summary, resumed summary) and checks that the
  final parameters are equal bit for bit."""
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  import pytest  # pylint: disable=import-outside-toplevel
  from aigc_jax import sharding, train  # pylint: disable=import-outside-toplevel
  straight, crashed = str(tmp_path / "straight"), str(tmp_path / "crashed")
  s1 = train.run(config, straight)
  real, calls = sharding.host_to_global, {"n": 0}

  def crash(batch, mesh):
    calls["n"] += 1
    if calls["n"] > after_batches:
      raise RuntimeError("simulated crash")
    return real(batch, mesh)

  monkeypatch.setattr(sharding, "host_to_global", crash)
  with pytest.raises(RuntimeError, match="simulated crash"):
    train.run(config, crashed)
  monkeypatch.setattr(sharding, "host_to_global", real)
  s2 = train.run(config, crashed)
  jax.tree.map(np.testing.assert_array_equal, final_params(straight)[1], final_params(crashed)[1])
  return s1, s2


def one_and_eight_devices(config, tmp_path, metric: str):
  """Trains `config` on one device and on the 8-device mesh (data 4 x fsdp 2) and checks that
  the logged training losses and summary[metric] agree; returns the 8-device workdir."""
  import jax  # pylint: disable=import-outside-toplevel
  import pytest  # pylint: disable=import-outside-toplevel
  from aigc_jax import train  # pylint: disable=import-outside-toplevel
  runs = {}
  for name, devices, mesh in (("one", jax.devices()[:1], dict(data=1, fsdp=1, tensor=1)),
                              ("eight", None, dict(data=4, fsdp=2, tensor=1))):
    c = config.copy_and_resolve_references()
    c.mesh.update(mesh)
    s = train.run(c, str(tmp_path / name), devices=devices)
    runs[name] = [m["loss"] for m in metrics(str(tmp_path / name))], s
  np.testing.assert_allclose(runs["eight"][0], runs["one"][0], rtol=1e-4)
  assert runs["eight"][1][metric] == pytest.approx(runs["one"][1][metric], rel=1e-4)
  return str(tmp_path / "eight")


def bfloat16_agrees(config, params, batch: dict, metric: str, rel: float) -> None:
  """The task's metrics on `batch` at compute_dtype bfloat16 differ from float32's (bfloat16
  really ran) by at most `rel` in sums[metric] / sums["count"]."""
  import jax  # pylint: disable=import-outside-toplevel
  import pytest  # pylint: disable=import-outside-toplevel
  from aigc_jax.tasks import get_task  # pylint: disable=import-outside-toplevel
  c = config.copy_and_resolve_references()
  out = {}
  for dtype in ("float32", "bfloat16"):
    c.compute_dtype = dtype
    m = jax.jit(get_task(c).eval_fns["metrics"])({"params": params}, batch, None)
    out[dtype] = float(m[metric] / m["count"])
  assert out["bfloat16"] != out["float32"]
  assert out["bfloat16"] == pytest.approx(out["float32"], rel=rel)
