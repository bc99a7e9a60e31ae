"""Small configs and readers shared by the tests."""

import json
import os

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


def metrics(workdir: str, split: str = "train") -> list[dict]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [e for e in map(json.loads, f) if e["split"] == split]


def summary(workdir: str) -> dict:
  with open(os.path.join(workdir, "summary.json")) as f:
    return json.load(f)


def final_state(workdir: str):
  """(step, the raw train state of the latest checkpoint as nested dicts of numpy arrays)."""
  mngr = ocp.CheckpointManager(os.path.join(workdir, "checkpoints"))
  step = mngr.latest_step()
  return step, ocp.StandardCheckpointer().restore(
      os.path.join(workdir, "checkpoints", str(step), "state"))


def final_params(workdir: str):
  """The raw parameter arrays of the latest checkpoint (numpy)."""
  step, raw = final_state(workdir)
  return step, raw["params"]
