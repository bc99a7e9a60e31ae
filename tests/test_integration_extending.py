"""The README's walk-throughs hold: a new objective is one task file, one model file and one
experiment file, and a new step option one file, all outside the package, with no other file
edited. The files below are the ones the walk-throughs show."""

import json
import textwrap

import numpy as np

from tests import helpers

TASK = '''
"""A toy objective: least squares on the label's one-hot code (a task of one's own project)."""
import jax
import jax.numpy as jnp

from aigc_jax import models
from aigc_jax.tasks import Task


def configure(c):  # the task's own section, in every config that picks it
  c.toy = {"target_scale": 1.0}


def make(config) -> Task:
  model = models.get_model(config.model)

  def init(rng, batch_spec):
    return dict(model.init(rng, jnp.zeros(batch_spec["input"].shape)))

  def loss(params, state, batch, rng, step):
    out = model.apply({"params": params}, batch["input"])
    target = config.toy.target_scale * jax.nn.one_hot(batch["label"], out.shape[-1])
    return jnp.mean(jnp.sum((out - target) ** 2, -1)), ({}, {})

  def metrics(variables, batch, rng):
    out = model.apply(variables, batch["input"])
    hit = (jnp.argmax(out, -1) == batch["label"]) * batch["mask"]
    return {"accuracy": jnp.sum(hit), "count": jnp.sum(batch["mask"])}

  return Task(init=init, loss=loss, eval_fns={"metrics": metrics},
              input_keys=("input", "label"))
'''

MODEL = '''
"""A toy model: one linear layer over the flattened input."""
import flax.linen as nn


class Model(nn.Module):
  num_classes: int = 10

  @nn.compact
  def __call__(self, x):
    return nn.Dense(self.num_classes)(x.reshape(x.shape[0], -1))
'''

OPTION = '''
"""A toy step option: clip every weight to [-limit, limit] after each update, and report the
largest weight at every log step and in the summary."""
import jax
import jax.numpy as jnp

from aigc_jax.options import Active

DEFAULTS = {"clip_weights": {"limit": 0.0}}  # 0: off


def check(config):
  if config.clip_weights.limit < 0:
    raise ValueError("clip_weights.limit must be >= 0")


def setup(config, run):
  limit = config.clip_weights.limit
  if not limit:
    return None
  largest = {}

  def params(state, p):
    return jax.tree.map(lambda w: jnp.clip(w, -limit, limit), p)

  def before_step(step, state):
    largest["value"] = max(float(jnp.max(jnp.abs(w))) for w in jax.tree.leaves(state.params))
    return state, None

  return Active(name="clip_weights", params=params, before_step=before_step,
                log=lambda done: {"largest_weight": largest["value"]},
                summary=lambda state, n: {"largest_weight": largest["value"]})
'''

EXPERIMENT = '''
"""The toy objective on MNIST-1D with the toy option."""
from aigc_jax import config as config_lib


def get_config(arg=None):
  c = config_lib.get_config(task="toyproj.toy_task")
  c.model = {"name": "toyproj.toy_model"}
  c.data.name = "mnist1d"
  c.data.preprocess = "rename(x='input')"
  c.data.batch_size = 64
  c.data.eval_batch_size = 200
  c.optim.lr = 1e-2
  c.train.update(num_steps=200, log_every_steps=50, eval_every_steps=200,
                 checkpoint_every_steps=100, progress_bar=False)
  config_lib.add_eval(c, "test", "metrics")
  config_lib.add_option(c, "toyproj.toy_option")
  c.clip_weights.limit = 0.05
  return c
'''


def test_a_toy_objective_and_option_from_files_of_ones_own(tmp_path, tfds_dir, monkeypatch):
  pkg = tmp_path / "src" / "toyproj"
  pkg.mkdir(parents=True)
  (pkg / "__init__.py").write_text("")
  for name, text in (("toy_task", TASK), ("toy_model", MODEL), ("toy_option", OPTION),
                     ("toy_experiment", EXPERIMENT)):
    (pkg / f"{name}.py").write_text(textwrap.dedent(text))
  monkeypatch.syspath_prepend(str(tmp_path / "src"))
  from aigc_jax import train  # pylint: disable=import-outside-toplevel
  from toyproj import toy_experiment  # pylint: disable=import-outside-toplevel

  c = toy_experiment.get_config()
  c.data.tfds_dir = tfds_dir
  s = train.run(c, str(tmp_path / "run"))
  # It learned (chance is 10%: 0.15 is 5 standard errors above it on the 1,000 test examples),
  # and the option kept every weight inside its limit, which binds, and reported it.
  assert s["test_accuracy"] > 0.15, s
  _, params = helpers.final_params(str(tmp_path / "run"))
  largest = max(float(np.abs(w).max()) for w in (params["Dense_0"]["kernel"],
                                                   params["Dense_0"]["bias"]))
  assert largest == np.float32(0.05)
  assert s["largest_weight"] == np.float32(0.05)
  logged = [e["largest_weight"] for e in helpers.metrics(str(tmp_path / "run"))]
  assert len(logged) == 4 and max(logged) <= 0.05 + 1e-7
  saved = json.loads((tmp_path / "run" / "config.json").read_text())
  assert saved["clip_weights"] == {"limit": 0.05} and saved["toy"] == {"target_scale": 1.0}
  assert saved["options"][-1] == "toyproj.toy_option"
