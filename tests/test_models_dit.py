"""The DiT backbone: the paper's size and FLOPs for DiT-XL/2, adaLN-Zero's identity start, and
config errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aigc_jax.errors import ConfigError
from aigc_jax.layers.transformer import Block
from aigc_jax.models import dit


def _abstract(m, size, channels, classes):
  args = (jnp.zeros((1, size, size, channels)), jnp.zeros((1,)),
          jnp.zeros((1,), jnp.int32) if classes else None)
  return jax.eval_shape(lambda: m.init(jax.random.PRNGKey(0), *args)), args


def test_dit_xl2_has_the_papers_parameters_and_flops():
  """Peebles & Xie 2023, Table 4: DiT-XL/2 on a 32x32x4 latent, 675M parameters and 118.6
  GFLOPs a forward pass (multiply-adds, as their count; XLA counts 2 per multiply-add)."""
  depth, width, heads = dit.SIZES["XL"]
  m = dit.Model(image_size=32, channels=4, patch=2, width=width, depth=depth, num_heads=heads,
                num_classes=1000)
  params, args = _abstract(m, 32, 4, 1000)
  n = sum(p.size for p in jax.tree.leaves(params))
  assert abs(n / 1e6 - 675) < 0.01 * 675, n
  specs = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in args]
  flops = jax.jit(lambda p, *a: m.apply(p, *a)).lower(params, *specs).cost_analysis()["flops"]
  assert abs(flops / 2 / 1e9 - 118.6) < 0.10 * 118.6, flops


def test_adaln_zero_blocks_start_as_the_identity_and_then_listen_to_the_condition():
  block = Block(4, 2, 0.0, None, "", True, False, causal=False, adaln=True)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 16))
  c = jax.random.normal(jax.random.PRNGKey(1), (2, 8))
  v = block.init(jax.random.PRNGKey(2), x, False, cond_BC=c)
  np.testing.assert_array_equal(np.asarray(block.apply(v, x, False, cond_BC=c)), np.asarray(x))
  v = jax.tree.map(lambda p: p + 0.1, v)  # the modulation is no longer zero
  out_a = block.apply(v, x, False, cond_BC=c)
  out_b = block.apply(v, x, False, cond_BC=-c)
  assert float(jnp.max(jnp.abs(out_a - out_b))) > 1e-2
  with pytest.raises(ValueError, match="needs its conditioning vector"):
    block.apply(v, x, False)


def test_an_untrained_dit_predicts_zero_with_or_without_labels():
  m = dit.Model(image_size=8, channels=1, patch=2, width=32, depth=2, num_heads=2, num_classes=3)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 1))
  v = m.init(jax.random.PRNGKey(1), x, jnp.zeros((2,)), jnp.array([0, 3]))
  out = m.apply(v, x, jnp.array([0.2, 0.9]), jnp.array([1, 3]))
  assert out.shape == x.shape and float(jnp.max(jnp.abs(out))) == 0.0


@pytest.mark.parametrize("kw,message", [
    ({"image_size": 30, "patch": 4}, "not divisible by model.patch=4"),
    ({"width": 30, "num_heads": 4}, "must split into model.num_heads=4"),
])
def test_bad_shapes_are_named(kw, message):
  with pytest.raises(ConfigError, match=message):
    dit.Model(**kw)


def test_analytic_forward_count_matches_the_papers_table():
  """DiT paper, Table 4 "Gflops" (multiply-adds) on a 32x32x4 latent with patch 2."""
  import types
  paper = {"S": 6.06, "B": 23.01, "L": 80.71, "XL": 118.64}
  for name, (depth, width, _) in dit.SIZES.items():
    m = types.SimpleNamespace(image_size=32, patch=2, channels=4, width=width, depth=depth)
    assert dit.forward_macs(m) / 1e9 == pytest.approx(paper[name], rel=2e-3), name
