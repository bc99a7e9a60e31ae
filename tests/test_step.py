"""Options of the one train step: gradient accumulation and the non-finite loss policy."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aigc_jax import train
from aigc_jax.errors import ConfigError, DivergedError
from tests import helpers


def test_accumulated_update_equals_the_whole_batch_update(tfds_dir, tmp_path):
  runs = {}
  for n in (1, 4):
    c = helpers.tiny_config(tfds_dir, num_steps=3, checkpoint_every_steps=1, log_every_steps=1)
    c.train.grad_accum_steps = n
    s = train.run(c, str(tmp_path / f"accum{n}"))
    runs[n] = (s, helpers.final_params(str(tmp_path / f"accum{n}"))[1],
               helpers.metrics(str(tmp_path / f"accum{n}")))
  # Summation order differs, and Adam divides by sqrt(v): where a gradient is near zero its
  # rounding moves the update by up to ~1e-3 of a step (lr 3e-3), hence atol 1e-5.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-5),
               runs[1][1], runs[4][1])
  for a, b in zip(runs[1][2], runs[4][2]):  # the logged loss is the whole batch's mean
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)


def test_grad_accum_that_does_not_split_the_batch_is_refused(tfds_dir, tmp_path):
  c = helpers.tiny_config(tfds_dir)
  c.train.grad_accum_steps = 3  # 64 examples over 8 devices: 8 rows each, not 3 micro-batches
  with pytest.raises(ConfigError, match="divisible by train.grad_accum_steps=3"):
    train.run(c, str(tmp_path))
  c.train.update(grad_accum_steps=1, nonfinite="continue")
  with pytest.raises(ConfigError, match="train.nonfinite='continue'"):
    train.run(c, str(tmp_path))


def _nan_from(step_number: int, monkeypatch):
  """The task's loss turns NaN from step `step_number` on (0-based), as a diverging run's."""
  real = train.get_task

  def poisoned(config):
    task = real(config)

    def loss(params, state, batch, rng, step):
      value, aux = task.loss(params, state, batch, rng, step)
      return value + jnp.where(step >= step_number, jnp.nan, 0.0), aux

    return dataclasses.replace(task, loss=loss)

  monkeypatch.setattr(train, "get_task", poisoned)


def test_stop_policy_names_the_step_and_keeps_the_last_good_checkpoint(tfds_dir, tmp_path,
                                                                        monkeypatch):
  _nan_from(7, monkeypatch)
  wd = str(tmp_path / "diverged")
  c = helpers.tiny_config(tfds_dir, num_steps=20, checkpoint_every_steps=5)
  with pytest.raises(DivergedError, match=r"Step 8 gave a non-finite loss .*checkpoint \(5\)"):
    train.run(c, wd)
  step, _ = helpers.final_state(wd)
  assert step == 5  # nothing after the bad step was saved
  m = helpers.metrics(wd)
  assert m[-1]["step"] == 10 and m[-1]["nonfinite_step"] == pytest.approx(3 / 5)


def test_skip_policy_counts_bad_steps_and_never_applies_them(tfds_dir, tmp_path, monkeypatch):
  good = str(tmp_path / "good")
  train.run(helpers.tiny_config(tfds_dir, num_steps=7, checkpoint_every_steps=7,
                                log_every_steps=7, eval_every_steps=7), good)
  _nan_from(7, monkeypatch)
  c = helpers.tiny_config(tfds_dir, num_steps=20)
  c.train.nonfinite = "skip"
  wd = str(tmp_path / "skip")
  train.run(c, wd)
  # Every update from step 8 on was skipped: the parameters are those after 7 steps, bit for bit.
  jax.tree.map(np.testing.assert_array_equal, helpers.final_params(good)[1],
               helpers.final_params(wd)[1])
  assert [m["nonfinite_step"] for m in helpers.metrics(wd)] == pytest.approx([0, 0.6, 1, 1])
