"""Image-text contrastive pretraining: both losses against hand computation, negatives across the
global batch (1 device = 8), unit embeddings blind to padding, retrieval with repeated captions,
zero-shot errors before compiling, a short clip_mnist run that learns, exact resume."""

import math

import jax
import numpy as np
import pytest

from aigc_jax import models, train
from aigc_jax.errors import ConfigError
from aigc_jax.evaluators import retrieval
from aigc_jax.tasks import image_text
from aigc_jax.tools import evaluate
from experiments import clip_mnist
from tests import helpers


def _tiny(data_dir, tfds_dir, steps=6, loss="softmax", hard=False, **evals):
  c = clip_mnist.get_config("negatives_quick" if hard else "quick")
  c.image_text.loss = loss
  c.model.update(embed_dim=16)
  c.model.image.encoder.update(hidden=(8, 16), latent_dim=32)
  c.model.text.update(num_layers=1, width=32)
  c.data.update(data_dir=data_dir, tfds_dir=tfds_dir, batch_size=128, eval_batch_size=200)
  c.data.captions.update(train_size=1_000, eval_size=200)
  c.train.update(num_steps=steps, log_every_steps=2, eval_every_steps=steps,
                 checkpoint_every_steps=3, progress_bar=False)
  c.evals = {k: c.evals[k] for k in evals} if evals else {}
  for k, split in evals.items():
    c.evals[k].split = split
  return c


def _test_records(c):
  from aigc_jax.data import sources  # pylint: disable=import-outside-toplevel
  return list(sources.get_source(sources.get_builder(c.data), "test"))


def test_losses_against_hand_computation():
  rng = np.random.default_rng(0)
  z = rng.normal(size=(5, 5)).astype(np.float32) * 3
  rows = [-z[i, i] + math.log(np.exp(z[i]).sum()) for i in range(5)]
  cols = [-z[i, i] + math.log(np.exp(z[:, i]).sum()) for i in range(5)]
  want = 0.5 * (np.mean(rows) + np.mean(cols))
  assert float(image_text.contrastive_loss(z, "softmax")) == pytest.approx(want, rel=1e-5)
  # SigLIP: -log sigmoid(z) on the diagonal, -log sigmoid(-z) off it, summed, over B.
  sig = lambda x: 1 / (1 + np.exp(-x))
  want = -(sum(math.log(sig(z[i, j] if i == j else -z[i, j]))
               for i in range(5) for j in range(5))) / 5
  assert float(image_text.contrastive_loss(z, "sigmoid")) == pytest.approx(want, rel=1e-5)
  # Hard negatives: 5 more captions, matched to no image, only widen the image -> caption rows.
  zn = np.concatenate([z, rng.normal(size=(5, 5)).astype(np.float32) * 3], axis=1)
  rows = [-zn[i, i] + math.log(np.exp(zn[i]).sum()) for i in range(5)]
  want = 0.5 * (np.mean(rows) + np.mean(cols))
  assert float(image_text.contrastive_loss(zn, "softmax")) == pytest.approx(want, rel=1e-5)
  want = -(sum(math.log(sig(zn[i, j] if i == j else -zn[i, j]))
               for i in range(5) for j in range(10))) / 5
  assert float(image_text.contrastive_loss(zn, "sigmoid")) == pytest.approx(want, rel=1e-5)


def test_embeddings_are_unit_and_blind_to_padding():
  c = clip_mnist.get_config("quick")
  model = models.get_model(c.model, vocab_size=20)
  x = np.random.default_rng(0).random((3, 56, 56, 1), np.float32)
  t = np.array([[1, 2, 3, -1, -1, -1], [4, 5, -1, -1, -1, -1], [7, 7, 7, 7, 7, 7]], np.int32)
  v = model.init(jax.random.PRNGKey(0), x, t)
  u = model.apply(v, x, method=model.embed_image)
  e = model.apply(v, t, method=model.embed_text)
  np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)
  longer = np.concatenate([t, np.full((3, 4), -1, np.int32)], axis=1)
  np.testing.assert_allclose(model.apply(v, longer, method=model.embed_text), e, atol=1e-5)
  logits = model.apply(v, x, t)
  np.testing.assert_allclose(logits, (1 / 0.07) * np.asarray(u) @ np.asarray(e).T, rtol=1e-4)


def test_retrieval_counts_identical_captions_as_hits():
  sim = np.array([[0.9, 0.1, 0.2], [0.1, 0.2, 0.8], [0.0, 0.7, 0.3]])
  # captions 1 and 2 are the same text: image 1 retrieving caption 2 is a hit.
  out = retrieval.recall_at_k(sim, np.array([0, 1, 1]), (1, 2))
  assert out == {"i2t_r1": 1.0, "i2t_r2": 1.0, "t2i_r1": 1.0, "t2i_r2": 1.0}
  out = retrieval.recall_at_k(sim, np.array([0, 1, 2]), (1, 2))
  # i2t: image 0 -> caption 0 yes; image 1 -> caption 2 (1 is second); image 2 -> caption 1.
  assert out["i2t_r1"] == pytest.approx(1 / 3) and out["i2t_r2"] == 1.0
  # t2i: caption 0 -> image 0; caption 1 -> image 2, then 1; caption 2 -> image 1, then 2.
  assert out["t2i_r1"] == pytest.approx(1 / 3) and out["t2i_r2"] == 1.0
  sim[1, 1] = 0.05  # caption 1 now ranks image 1 last
  assert retrieval.recall_at_k(sim, np.array([0, 1, 2]), (2,))["t2i_r2"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("hard", [False, True])
def test_negatives_span_the_global_batch_one_device_equals_eight(data_dir, tfds_dir, tmp_path,
                                                                 hard):
  # The sigmoid loss reads the same [B, B] logits (checked by hand above); hard negatives
  # widen them to [B, 2B] with every device's negatives.
  one, eight = _tiny(data_dir, tfds_dir, hard=hard), _tiny(data_dir, tfds_dir, hard=hard)
  eight.mesh.data = 8
  train.run(one, str(tmp_path / "one"), devices=jax.devices()[:1])
  train.run(eight, str(tmp_path / "eight"))
  a = [e["loss"] for e in helpers.metrics(str(tmp_path / "one"))]
  b = [e["loss"] for e in helpers.metrics(str(tmp_path / "eight"))]
  # A per-device loss (16 pairs each) would start near log(16), log(22.6) with its negatives;
  # the global one near log(128), with the negatives 0.5 (log 256 + log 128) = log(181).
  assert a[0] > math.log(128 if hard else 64)
  np.testing.assert_allclose(b, a, rtol=2e-5)
  if hard:
    assert "negative_accuracy" in helpers.metrics(str(tmp_path / "eight"))[0]


def test_clip_mnist_learns_zero_shot_and_resumes_exactly(data_dir, tfds_dir, tmp_path,
                                                        monkeypatch):
  c = _tiny(data_dir, tfds_dir, steps=120, zero_shot="test_digits", retrieval="test")
  c.evals.zero_shot.templates = clip_mnist.SEEN
  c.model = clip_mnist.get_config("quick").model
  c.data.captions.train_size = 4_000
  s = train.run(c, str(tmp_path / "clip"))
  # Chance is 10% and 1 / 200; the short run must be far above both.
  assert s["zero_shot_accuracy"] > 0.5, s
  assert s["retrieval_i2t_r5"] > 0.1 and s["retrieval_t2i_r5"] > 0.1, s
  # Evaluated again from its checkpoint: the same figures, and with the data set's hard
  # negatives tokenised, how often an image prefers its caption to its swapped one.
  hard = ["data.text_key=caption,negative", "data.tokens_key=caption,negative",
          "image_text.negatives=negative"]
  again = evaluate.evaluate(str(tmp_path / "clip"), ["retrieval"], "latest", hard)
  assert {k: again[k] for k in s if k.startswith("retrieval")} == {
      k: v for k, v in s.items() if k.startswith("retrieval")}
  pairs = 200 - sum(r["layout"] == 0 for r in _test_records(c))
  assert again["retrieval_negative_accuracy"] * pairs == pytest.approx(
      round(again["retrieval_negative_accuracy"] * pairs))  # a share of the two-digit images
  with pytest.raises(ConfigError, match="an existing config entry"):
    evaluate.evaluate(str(tmp_path / "clip"), ["retrieval"], "latest", ["data.text_keys=x"])
  s1, s2 = helpers.crash_and_resume(_tiny(data_dir, tfds_dir), tmp_path, monkeypatch)
  assert s1 == s2


def test_bad_input_is_refused_before_compiling(data_dir, tfds_dir, tmp_path):
  c = _tiny(data_dir, tfds_dir, zero_shot="test_digits")
  c.evals.zero_shot.templates = ("a picture of a {}",)  # 'c' never occurs in a caption
  with pytest.raises(ConfigError, match="not in the tokenizer's vocabulary"):
    train.run(c, str(tmp_path / "a"))
  c = _tiny(data_dir, tfds_dir, zero_shot="test_digits")
  c.evals.zero_shot.templates = ("the digit {}" + " is there" * 7,)
  with pytest.raises(ConfigError, match="longer than data.seq_len=64"):
    train.run(c, str(tmp_path / "b"))
  c = _tiny(data_dir, tfds_dir)
  c.model.text.block_size = 32
  with pytest.raises(ConfigError, match="longer than the text model's context"):
    train.run(c, str(tmp_path / "c"))
  c = _tiny(data_dir, tfds_dir)
  c.data.tokenizer = ""
  with pytest.raises(ConfigError, match="needs caption tokens"):
    train.run(c, str(tmp_path / "d"))
  c = _tiny(data_dir, tfds_dir)
  c.image_text.negatives = "negative"  # not tokenised: data.text_key is 'caption' only
  with pytest.raises(ConfigError, match="add it to data.text_key"):
    train.run(c, str(tmp_path / "f"))
  c = _tiny(data_dir, tfds_dir)
  c.image_text.loss = "hinge"
  with pytest.raises(ConfigError, match="valid: softmax, sigmoid"):
    train.run(c, str(tmp_path / "e"))
