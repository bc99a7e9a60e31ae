import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from aigc_jax import optim
from aigc_jax.errors import ConfigError
from aigc_jax import config as config_lib


def _optim(**kw):
  c = config_lib.get_config().optim
  c.update(kw)
  return c


def test_warmup_cosine_schedule_values():
  sched = optim.make_schedule(_optim(lr=1.0, schedule="warmup_cosine", warmup_steps=10,
                                     min_lr_ratio=0.1), total_steps=110)
  assert float(sched(0)) == 0.0
  assert float(sched(5)) == pytest.approx(0.5)
  assert float(sched(10)) == pytest.approx(1.0)
  assert float(sched(60)) == pytest.approx(0.1 + 0.9 * 0.5, rel=1e-5)
  assert float(sched(110)) == pytest.approx(0.1)


def test_optimizer_reports_its_learning_rate():
  tx = optim.make_optimizer(_optim(lr=0.5, grad_clip_norm=1.0), total_steps=10)
  params = {"w": jnp.ones(3)}
  state = tx.init(params)
  _, state = tx.update({"w": jnp.ones(3)}, state, params)
  assert float(optim.learning_rate(state)) == pytest.approx(0.5)


@pytest.mark.parametrize("kw,match", [({"name": "adamax"}, "optim.name"),
                                      ({"schedule": "step"}, "optim.schedule")])
def test_unknown_optimizer_or_schedule(kw, match):
  with pytest.raises(ConfigError, match=match):
    optim.make_optimizer(_optim(**kw), 10)


@pytest.mark.parametrize("decay,bias_after", [("matrices", 1.0), ("all", 1.0 - 0.1 * 0.5)])
def test_weight_decay_on_matrices_only(decay, bias_after):
  """With zero gradients only decay moves weights: kernels shrink by lr * wd, biases and norm
  scales only when decay="all"."""
  tx = optim.make_optimizer(_optim(name="adamw", lr=0.1, weight_decay=0.5, decay=decay), 10)
  params = {"kernel": jnp.ones((2, 3)), "bias": jnp.ones(3)}
  updates, _ = tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
  new = optax.apply_updates(params, updates)
  np.testing.assert_allclose(new["kernel"], 1.0 - 0.1 * 0.5, rtol=1e-6)
  np.testing.assert_allclose(new["bias"], bias_after, rtol=1e-6)
  with pytest.raises(ConfigError, match="optim.decay='some'"):
    optim.make_optimizer(_optim(name="adamw", decay="some"), 10)
