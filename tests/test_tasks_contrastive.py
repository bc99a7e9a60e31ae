"""Contrastive learning: MNIST-1D augmentations, InfoNCE against hand values, negatives across
the global batch (1 device = 8 devices), refused identical views, exact resume."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aigc_jax import train
from aigc_jax.options import augment
from aigc_jax.errors import ConfigError
from aigc_jax.tasks import contrastive
from experiments import simclr_mnist1d
from tests import helpers


def _tiny(tfds_dir, steps=6, **kw):
  c = simclr_mnist1d.get_config("quick")
  c.sweep = ()
  c.data.update(tfds_dir=tfds_dir, batch_size=64, eval_batch_size=200)
  c.train.update(num_epochs=0.0, num_steps=steps, log_every_steps=2, eval_every_steps=steps,
                 checkpoint_every_steps=3, progress_bar=False)
  c.evals = {"knn": c.evals.knn}
  c.train.best_metric = ""
  for k, v in kw.items():
    c.contrastive[k] = v
  return c


def test_mnist1d_augmentations():
  t = np.arange(40) - 19.5
  x = (3.0 + 0.2 * t + np.sin(t)).astype(np.float32)
  out = augment.parse("detrend")(jax.random.PRNGKey(0), {"input": x[None]})["input"][0]
  assert abs(float(jnp.mean(out))) < 1e-5 and abs(float(jnp.sum(out * t))) < 1e-3
  np.testing.assert_allclose(out, np.sin(t) - np.sum(np.sin(t) * t) / np.sum(t * t) * t
                             - np.mean(np.sin(t)), atol=1e-5)
  batch = {"input": np.tile(np.arange(40, dtype=np.float32), (64, 1))}
  shifted = np.asarray(augment.parse("circular_shift(10)")(jax.random.PRNGKey(1), batch)["input"])
  shifts = {int(np.argmin(row)) for row in shifted}  # where the 0 went
  assert shifts <= set(range(10)) and len(shifts) > 5
  for row, s in zip(shifted, (int(np.argmin(r)) for r in shifted)):
    np.testing.assert_array_equal(row, np.roll(np.arange(40), s))
  zeros = {"input": np.zeros((500, 40), np.float32)}
  lines = np.asarray(augment.parse("random_slope_offset(0.04, 0.3)")(
      jax.random.PRNGKey(2), zeros)["input"])
  slopes, offsets = lines[:, 1] - lines[:, 0], lines.mean(axis=1)
  np.testing.assert_allclose(np.diff(lines, axis=1), np.repeat(slopes[:, None], 39, 1), atol=1e-5)
  assert abs(slopes.std() - 0.04) < 0.005 and abs(offsets.std() - 0.3) < 0.04
  with pytest.raises(ConfigError, match=r"\[L\] or \[L, C\] sequences"):
    augment.parse("detrend")(jax.random.PRNGKey(0), {"input": np.zeros((2, 4, 4, 4, 1))})


def test_info_nce_against_hand_computation():
  rng = np.random.default_rng(0)
  z = rng.normal(size=(5, 2, 3)).astype(np.float32)
  n = z / np.linalg.norm(z, axis=-1, keepdims=True)
  t = 0.5
  # cross_view: row i of view 1 against every example's view 2, the positive on the diagonal.
  s = n[:, 0] @ n[:, 1].T / t
  want = np.mean([-s[i, i] + math.log(np.exp(s[i]).sum()) for i in range(5)])
  assert float(contrastive.info_nce(z, t, "cross_view")) == pytest.approx(want, rel=1e-5)
  # all: 2B anchors, each against the 2B - 1 others, its other view the positive.
  f = n.reshape(10, 3)
  s = f @ f.T / t
  terms = []
  for i in range(10):
    others = [j for j in range(10) if j != i]
    terms.append(-s[i, i ^ 1] + math.log(np.exp(s[i, others]).sum()))
  assert float(contrastive.info_nce(z, t, "all")) == pytest.approx(np.mean(terms), rel=1e-5)


def test_negatives_span_the_global_batch_one_device_equals_eight(tfds_dir, tmp_path):
  for negatives in ("all", "cross_view"):
    one, eight = _tiny(tfds_dir, negatives=negatives), _tiny(tfds_dir, negatives=negatives)
    eight.mesh.data = 8
    train.run(one, str(tmp_path / f"one_{negatives}"), devices=jax.devices()[:1])
    train.run(eight, str(tmp_path / f"eight_{negatives}"))
    a = [e["loss"] for e in helpers.metrics(str(tmp_path / f"one_{negatives}"))]
    b = [e["loss"] for e in helpers.metrics(str(tmp_path / f"eight_{negatives}"))]
    # log(batch): a per-device loss (8 examples each) would start near log(8), not log(64).
    assert a[0] > math.log(32) and len(a) == 3
    np.testing.assert_allclose(b, a, rtol=2e-5)


def test_contrastive_run_resumes_exactly(tfds_dir, tmp_path, monkeypatch):
  s1, s2 = helpers.crash_and_resume(_tiny(tfds_dir), tmp_path, monkeypatch)
  assert s1 == s2 and helpers.final_params(str(tmp_path / "crashed"))[0] == 6


@pytest.mark.parametrize("aug,match", [
    ("views(2)|detrend", "two identical views"),
    ("detrend|circular_shift(10)", "needs two views"),
    ("views(3)|circular_shift(10)", "needs two views"),
])
def test_views_that_cannot_teach_are_refused(tfds_dir, tmp_path, aug, match):
  c = _tiny(tfds_dir)
  c.augment = aug
  with pytest.raises(ConfigError, match=match):
    train.run(c, str(tmp_path))


def test_simclr_mnist_views_grid_and_its_encoder_transfers(data_dir, tfds_dir, tmp_path):
  from experiments import simclr_mnist, transfer_mnist  # pylint: disable=import-outside-toplevel
  c = simclr_mnist.get_config("quick")
  c.model.backbone.encoder.update(hidden=(64,), latent_dim=8)
  c.data.update(data_dir=data_dir, tfds_dir=tfds_dir, batch_size=64)
  c.train.update(num_epochs=0.0, num_steps=4, eval_every_steps=4, checkpoint_every_steps=4,
                 progress_bar=False)
  c.evals = {"views": c.evals.views, "knn": c.evals.knn}
  s = train.run(c, str(tmp_path / "simclr"))
  assert 0.1 < s["knn_accuracy"] <= 1.0
  from PIL import Image  # pylint: disable=import-outside-toplevel
  views = np.asarray(Image.open(tmp_path / "simclr" / "samples" / "views_step_000004.png"))
  assert views.shape == (8 * 30 + 2, 3 * 30 + 2)  # 8 rows: the original and its two views
  # The contrastive model keeps the encoder under encoder/encoder; the classifier takes it.
  ft = transfer_mnist.classifier_config("simclr", 10, 0, str(tmp_path / "simclr"))
  ft.model.encoder.update(hidden=(64,), latent_dim=8)
  ft.data.update(data_dir=data_dir, tfds_dir=tfds_dir, batch_size=96)
  ft.train.update(num_steps=2, eval_every_steps=2, checkpoint_every_steps=2, progress_bar=False)
  ft.freeze = "^encoder/"
  train.run(ft, str(tmp_path / "ft"))
  old = helpers.final_params(str(tmp_path / "simclr"))[1]["encoder"]["encoder"]
  jax.tree.map(np.testing.assert_array_equal, helpers.final_params(str(tmp_path / "ft"))[1][
      "encoder"], old)


def test_simclr_mnist1d_convolutions_transfer_into_the_papers_cnn(tfds_dir, tmp_path):
  from experiments import transfer_mnist1d  # pylint: disable=import-outside-toplevel
  c = _tiny(tfds_dir, steps=3)
  train.run(c, str(tmp_path / "simclr"))
  ft = transfer_mnist1d.classifier_config("simclr", 10, 0, str(tmp_path / "simclr"), probe=True)
  ft.data.tfds_dir = tfds_dir
  ft.train.update(num_steps=2, progress_bar=False)
  ft.evals.probe.l2_grid = (1e-3,)
  s = train.run(ft, str(tmp_path / "probe"))
  assert 0.1 < s["probe_accuracy"] <= 1.0 and 0.1 < s["knn_accuracy"] <= 1.0
  old = helpers.final_params(str(tmp_path / "simclr"))[1]["encoder"]
  new = helpers.final_params(str(tmp_path / "probe"))[1]
  for conv in ("Conv_0", "Conv_1", "Conv_2"):  # loaded and frozen: bit for bit
    jax.tree.map(np.testing.assert_array_equal, new[conv], old[conv])
