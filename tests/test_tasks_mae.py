"""Masked autoencoder: masking, a bidirectional ViT, the reconstruction grid, errors, resume."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aigc_jax import models, train
from aigc_jax.errors import ConfigError
from aigc_jax.models.mae import mask_ids
from experiments import mae_mnist
from tests import helpers


def _tiny(data_dir, tfds_dir, steps=6):
  c = mae_mnist.get_config("quick")
  c.model.update(width=16, depth=1, num_heads=2, decoder_width=8)
  c.data.update(data_dir=data_dir, tfds_dir=tfds_dir, batch_size=64)
  c.optim.warmup_steps = 2
  c.train.update(num_epochs=0.0, num_steps=steps, log_every_steps=2, eval_every_steps=steps,
                 checkpoint_every_steps=3, progress_bar=False)
  c.evals = {"test": c.evals.test, "reconstructions": c.evals.reconstructions}
  return c


def test_mask_ids_keep_a_quarter_and_restore_the_order():
  keep, restore, mask = mask_ids(jax.random.PRNGKey(0), 5, 16, 0.75)
  assert keep.shape == (5, 4) and np.all(np.asarray(mask).sum(1) == 12)
  # Kept patches are exactly the unmasked ones, and restore inverts the shuffle.
  for k, r, m in zip(np.asarray(keep), np.asarray(restore), np.asarray(mask)):
    assert set(k) == set(np.flatnonzero(m == 0))
    assert len(set(r)) == 16
  assert not np.array_equal(keep[0], keep[1])  # a fresh subset per example


def test_encoder_sees_only_visible_patches_and_attends_both_ways():
  m = models.get_model({"name": "mae", "image_size": 8, "patch": 4, "width": 16, "depth": 1,
                        "num_heads": 2, "decoder_width": 8})
  x = np.random.default_rng(0).uniform(size=(2, 8, 8)).astype(np.float32)
  v = m.init(jax.random.PRNGKey(0), x)
  keep = jnp.array([[0, 3], [1, 2]])
  out = m.apply(v, x, keep, method=m.encode)
  assert out.shape == (2, 2, 16)
  # Changing a hidden patch (patch 1 of example 0) changes nothing the encoder returns ...
  y = x.copy()
  y[0, :4, 4:] += 1.0
  np.testing.assert_allclose(m.apply(v, y, keep, method=m.encode)[0], out[0], atol=1e-6)
  # ... changing visible patch 3 (the last) changes the code of patch 0: no causal mask.
  z = x.copy()
  z[0, 4:, 4:] += 1.0
  assert not np.allclose(m.apply(v, z, keep, method=m.encode)[0, 0], out[0, 0], atol=1e-4)


def test_mae_trains_draws_its_grid_and_resumes_exactly(data_dir, tfds_dir, tmp_path, monkeypatch):
  c = _tiny(data_dir, tfds_dir)
  s1 = train.run(c, str(tmp_path / "straight"))
  assert s1["test_loss"] > 0
  from PIL import Image  # pylint: disable=import-outside-toplevel
  grid = np.asarray(Image.open(tmp_path / "straight" / "samples" /
                               "reconstructions_step_000006.png"))
  assert grid.shape[0] == 4 * 3 * 30 + 2  # 4 rows of examples x (original, masked, recon)
  s1b, s2 = helpers.crash_and_resume(c, tmp_path / "resume", monkeypatch)
  assert s1b == s2 == s1


@pytest.mark.parametrize("change,match", [
    ({"model.patch": 5}, "does not divide model.image_size=28"),
    ({"mae.mask_ratio": 1.0}, r"must be in \(0, 1\)"),
    ({"mae.mask_ratio": 0.0}, r"must be in \(0, 1\)"),
])
def test_bad_mae_configs(data_dir, tfds_dir, tmp_path, change, match):
  c = _tiny(data_dir, tfds_dir)
  for k, v in change.items():
    section, key = k.split(".")
    c[section][key] = v
  with pytest.raises(ConfigError, match=match):
    train.run(c, str(tmp_path))


def test_vit_fine_tunes_from_an_mae_run_and_the_probe_keeps_its_encoder(data_dir, tfds_dir,
                                                                         tmp_path):
  from aigc_jax.models import vit  # pylint: disable=import-outside-toplevel
  from experiments import transfer_mnist  # pylint: disable=import-outside-toplevel
  pre = _tiny(data_dir, tfds_dir, steps=2)
  pre.model.depth = 2
  train.run(pre, str(tmp_path / "mae"))

  def clf(probe):
    c = transfer_mnist.classifier_config("mae", 10, 0, str(tmp_path / "mae"), probe=probe)
    c.model.update(width=16, depth=2, num_heads=2)
    c.data.update(data_dir=data_dir, tfds_dir=tfds_dir, batch_size=64, eval_batch_size=400)
    c.train.update(num_epochs=0.0, num_steps=2, log_every_steps=1, progress_bar=False)
    c.init.map = vit.init_map(c.model.depth)
    return c

  assert vit.init_map(2) == "patch_embed, block0, block1, norm"
  s = train.run(clf(True), str(tmp_path / "probe"))
  assert 0.1 < s["probe_accuracy"] <= 1
  _, mae_params = helpers.final_params(str(tmp_path / "mae"))
  _, vit_params = helpers.final_params(str(tmp_path / "probe"))
  assert set(vit_params) == {"patch_embed", "block0", "block1", "norm", "head"}
  for name in ("patch_embed", "block0", "block1", "norm"):  # frozen: the MAE's, bit for bit
    jax.tree.map(np.testing.assert_array_equal, vit_params[name], mae_params[name])
  s = train.run(clf(False), str(tmp_path / "finetune"))
  _, tuned = helpers.final_params(str(tmp_path / "finetune"))
  assert not np.array_equal(tuned["block0"]["fc"]["kernel"], mae_params["block0"]["fc"]["kernel"])
  final = helpers.metrics(str(tmp_path / "finetune"), "test")[-1]
  assert s["test_accuracy"] == final["accuracy"] and final["step"] == 2  # evaluated at the end
