"""Text to image: caption conditioning (null caption, finite gradients, clip's tower loads), the
composition scorer's crops and accuracies, a short t2i_mnist run, and its errors."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from aigc_jax import models, train, trees
from aigc_jax.data.builders import mnist_captions, mnist_idx
from aigc_jax.errors import ConfigError
from aigc_jax.evaluators import compositions
from aigc_jax.models import clip as clip_model
from aigc_jax.tasks import diffusion
from experiments import clip_mnist, t2i_mnist
from tests import helpers


def test_accuracies_tell_digits_from_relations():
  digits = np.array([[3, 5], [3, 5], [7, -1], [2, 2]])
  layouts = np.array([2, 1, 0, 1])
  owner = np.array([0, 0, 1, 1, 2, 3, 3])
  slot = np.array([0, 1, 1, 0, 0, 0, 1])  # slots may come in any order
  pred = np.array([3, 5, 3, 5, 1, 2, 4])  # image 1 swapped, image 2 wrong, image 3 half right
  # Image 1's slots are (slot 1: 3, slot 0: 5), i.e. 5 left of 3: digits right, relation wrong.
  out = compositions.accuracies(pred, owner, slot, digits, layouts)
  assert out["digit_accuracy"] == pytest.approx((2 + 2 + 0 + 1) / 7)
  assert out["relation_accuracy"] == pytest.approx(1 / 3)  # only image 0 of the three pairs
  assert out["exact_accuracy"] == pytest.approx(1 / 4)
  assert out["swap_rate"] == pytest.approx(1 / 3)  # image 1; image 3's (2, 4) is no swap


def test_slot_crops_centre_each_digit_alone(data_dir):
  found = mnist_idx.raw_files(data_dir, mnist_idx.Builder.BUILDER_CONFIGS[0])
  images, _, idx = mnist_idx.carve(found)["test"]
  a, b = images[idx[0]], images[idx[1]]
  rng = np.random.default_rng(0)
  for layout in (1, 2):
    for _ in range(5):  # jittered, at the canvas' edge too
      canvas = mnist_captions.compose([a, b], layout, 56, 3, rng).astype(np.float32) / 255
      crops, owner, slot = compositions.slot_crops(canvas[None], np.array([layout]))
      assert owner.tolist() == [0, 0] and slot.tolist() == [0, 1]
      for crop, digit in zip(crops[..., 0], (a, b)):
        # All of its own ink, none of its neighbour's, and centred as MNIST centres digits.
        assert crop.sum() == pytest.approx(digit.sum() / 255, rel=1e-5)
        ys, xs = np.mgrid[:28, :28]
        com = np.array([(ys * crop).sum(), (xs * crop).sum()]) / crop.sum()
        ref = np.array([(ys * digit).sum(), (xs * digit).sum()]) / digit.sum()
        assert np.abs(com - ref).max() <= 0.51


def _small_caption_unet(**model):
  """t2i_mnist:quick's U-Net made small; (config, model, x, t, captions (row 1 empty), vars)."""
  c = t2i_mnist.get_config("quick")
  c.model.update(width=16, num_res_blocks=1, groups=4, heads=2, **model)
  c.model.text.update(num_layers=1, width=32)
  model = models.get_model(c.model, vocab_size=30)
  x, t = jnp.zeros((3, 56, 56, 1)), jnp.full((3,), 0.5)
  cap = jnp.array([[1, 2, 3, -1], [-1, -1, -1, -1], [4, -1, -1, -1]], jnp.int32)
  return c, model, x, t, cap, model.init(jax.random.PRNGKey(0), x, t, cap)


def test_an_empty_caption_is_the_null_condition_with_finite_gradients():
  c, model, x, t, cap, v = _small_caption_unet()
  assert set(v["params"]["caption"]) == {"text", "proj", "null", "null_token"}

  def loss(params, cap):
    return jnp.sum(jnp.square(model.apply({"params": params}, x + 0.3, t, cap)))

  g = jax.grad(loss)(v["params"], cap)
  assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(g))
  # The empty row is the null vector, whatever the text tower's weights.
  cond = clip_model.TextCondition(c.model.text, 30, 64, "mean", 32)
  cv = cond.init(jax.random.PRNGKey(1), cap)
  base = cond.apply(cv, cap)
  np.testing.assert_array_equal(base[1], cv["params"]["null"])
  other = jax.tree.map(lambda w: w + 0.1, cv["params"]["text"])
  moved = cond.apply({"params": {**cv["params"], "text": other}}, cap)
  np.testing.assert_array_equal(moved[1], base[1])
  assert not np.allclose(moved[0], base[0], atol=1e-4)


def test_cross_attention_reads_the_caption_and_ignores_its_padding():
  c, model, x, t, cap, v = _small_caption_unet(cross_attention_at=(14, 7))
  assert set(v["params"]["caption"]) == {"text", "proj", "null", "null_token"}
  assert {"down0_attn0_x", "down1_attn0_x", "mid_attn_x", "up0_attn1_x"} <= set(v["params"])
  # Zero-initialised outputs hide every path; move all weights off their initial values.
  params = jax.tree.map(lambda p: p + 0.05 * jnp.cos(jnp.arange(p.size).reshape(p.shape)),
                        v["params"])
  run = lambda p, cap: np.asarray(model.apply({"params": p}, x + 0.3, t, cap))
  base = run(params, cap)
  # More padding changes nothing: the context's lengths mask it.
  padded = jnp.concatenate([cap, jnp.full((3, 5), -1, jnp.int32)], axis=1)
  np.testing.assert_allclose(run(params, padded), base, rtol=1e-5, atol=1e-5)
  # The empty caption reads the null token alone, whatever the text tower's weights; the
  # captions move with them, and through the cross-attention, not only the pooled embedding.
  text = jax.tree.map(lambda w: w + 0.1, params["caption"]["text"])
  moved = run({**params, "caption": {**params["caption"], "text": text}}, cap)
  np.testing.assert_array_equal(moved[1], base[1])
  assert not np.allclose(moved[0], base[0], atol=1e-4)
  blind = {k: (jax.tree.map(jnp.zeros_like, w) if k.endswith("_x") else w)
           for k, w in params.items()}
  blind_moved = {**blind, "caption": {**blind["caption"], "text": text}}
  # Without the cross-attention, only the pooled path carries the caption: a different image.
  assert not np.allclose(run(blind_moved, cap)[0] - run(blind, cap)[0], moved[0] - base[0],
                         atol=1e-4)
  with pytest.raises(ConfigError, match="model.text is empty"):
    models.get_model({**c.model.to_dict(), "text": {}})
  with pytest.raises(ConfigError, match=r"its levels are \[14, 7\]"):
    models.get_model({**c.model.to_dict(), "cross_attention_at": (28,)}, vocab_size=30)


def test_the_clip_text_tower_has_the_denoisers_caption_tower_shapes():
  clip = models.get_model(clip_mnist.get_config("quick").model, vocab_size=30)
  unet = models.get_model(t2i_mnist.get_config("quick").model, vocab_size=30)
  cv = jax.eval_shape(clip.init, jax.random.PRNGKey(0), jnp.zeros((2, 56, 56, 1)),
                      jnp.zeros((2, 64), jnp.int32))
  uv = jax.eval_shape(unet.init, jax.random.PRNGKey(0), jnp.zeros((2, 56, 56, 1)),
                      jnp.zeros((2,)), jnp.zeros((2, 64), jnp.int32))
  shapes = lambda tree: dict(zip(trees.paths(tree), (x.shape for x in jax.tree.leaves(tree))))
  assert shapes(uv["params"]["caption"]["text"]) == shapes(cv["params"]["text"])


def _tiny(data_dir, tfds_dir, classifier, steps=4):
  c = t2i_mnist.get_config("quick")
  c.model.update(width=16, num_res_blocks=1, groups=4, heads=2)
  c.model.text.update(num_layers=1, width=32)
  c.data.update(data_dir=data_dir, tfds_dir=tfds_dir, eval_batch_size=40)
  c.data.captions.update(train_size=1_000, eval_size=200)
  c.train.update(num_steps=steps, log_every_steps=2, eval_every_steps=steps,
                 checkpoint_every_steps=steps, progress_bar=False)
  c.sampler.steps = 2
  c.evals = {"seen": c.evals.seen, "novel": c.evals.novel}
  c.train.best_metric = ""
  for ec in c.evals.values():
    ec.update(samples=40, grid=12, classifier_workdir=classifier)
  return c


@pytest.fixture(scope="module")
def classifier(data_dir, tfds_dir, tmp_path_factory):
  return helpers.train_classifier(data_dir, tfds_dir, str(tmp_path_factory.mktemp("scorer")))


def test_t2i_run_scores_seen_and_novel_captions(data_dir, tfds_dir, classifier, tmp_path):
  s = train.run(_tiny(data_dir, tfds_dir, classifier), str(tmp_path))
  for split in ("seen", "novel"):
    # The real images under the same scorer: the ceiling; an untrained generator is far below.
    assert s[f"{split}_real_digit_accuracy"] > 0.85, s
    assert s[f"{split}_digit_accuracy"] < s[f"{split}_real_digit_accuracy"] - 0.3, s
    assert s[f"{split}_fid"] > 2 * s[f"{split}_fid_floor"], s
    grid = np.asarray(Image.open(tmp_path / "samples" / f"{split}_step_000004.png"))
    assert grid.shape == (2 * (56 * 3 + 40), 6 * (56 * 3 + 8))  # 12 captions, 6 a row


def test_caption_errors(data_dir, tfds_dir, classifier, tmp_path):
  c = t2i_mnist.get_config("quick")
  c.model.num_classes = 10
  with pytest.raises(ConfigError, match="both set"):
    models.get_model(c.model, vocab_size=30)
  c = _tiny(data_dir, tfds_dir, classifier)
  c.data.tokenizer = ""
  with pytest.raises(ConfigError, match="needs caption tokens"):
    train.run(c, str(tmp_path / "a"))
  task = diffusion.make(_tiny(data_dir, tfds_dir, classifier))
  v = task.init(jax.random.PRNGKey(0), {"input": jnp.zeros((2, 56, 56, 1)),
                                        "caption": jnp.zeros((2, 64), jnp.int32)})
  with pytest.raises(ConfigError, match="draws from captions"):
    task.eval_fns["sample"](v, jax.random.PRNGKey(0), 2)
  c = _tiny(data_dir, tfds_dir, classifier)
  c.model.text = {}
  c.sampler.guidance = 2.0
  with pytest.raises(ConfigError, match="needs a conditional model"):
    train.run(c, str(tmp_path / "b"))
  assert not os.path.exists(tmp_path / "b" / "checkpoints")


def test_a_text_tower_built_unlike_its_clip_run_is_refused(tmp_path):
  # The causal mask and the pooling carry no parameters: a mismatch would load silently.
  clip = clip_mnist.get_config("quick")
  clip.model.text.causal = False
  clip.model.pooling = "mean"
  (tmp_path / "config.json").write_text(clip.to_json())
  c = t2i_mnist.get_config("clip_quick")
  c.init.workdir = str(tmp_path)
  with pytest.raises(ConfigError, match="trained with causal=False, pooling='mean'"):
    diffusion.make(c)
  c.model.text.causal, c.model.text_pooling = False, "mean"  # built as that run built it
  diffusion.check_text_tower(c)
