"""A smoke test per experiment: a few steps of the quick variant, then resume and continue."""

import os

import pytest

from aigc_jax import sweep, train
from experiments import cnn_mnist, mnist1d
from tests import helpers


def _shrink(c, tfds_dir, steps):
  c.data.tfds_dir = tfds_dir
  c.train.num_epochs = 0.0
  c.train.update(dict(num_steps=steps, log_every_steps=2, eval_every_steps=steps,
                      checkpoint_every_steps=2, progress_bar=False))
  return c


def test_mnist1d_quick_sweeps_all_four_models(tfds_dir, tmp_path):
  c = _shrink(mnist1d.get_config("quick"), tfds_dir, 4)
  c.sweep = (c.sweep[0], ("seed", (0, 1)))  # the experiment's four models, two seeds
  out = sweep.run(c, str(tmp_path))
  assert set(out["table"]) == {f"model={m}" for m in ("linear", "mlp", "cnn1d", "gru")}
  row = out["table"]["model=cnn1d"]
  assert row["runs"] == 2 and row["reference"] == 0.94
  assert 0.0 < row["test_accuracy"]["mean"] <= 1.0
  assert os.path.exists(tmp_path / "modelmlp_seed1" / "summary.json")
  md = open(tmp_path / "summary.md").read()
  assert "| model=gru |" in md and "0.91" in md
  # Rerunning resumes nothing and retrains nothing: every run is finished.
  assert sweep.run(c, str(tmp_path))["table"] == out["table"]


def test_cnn_mnist_quick_runs_and_resumes(data_dir, tfds_dir, tmp_path):
  c = _shrink(cnn_mnist.get_config("quick"), tfds_dir, 4)
  c.data.data_dir = data_dir
  wd = str(tmp_path)
  train.run(c, wd)
  assert [e["step"] for e in helpers.metrics(wd)] == [2, 4]
  c.train.num_steps = 8  # a longer run on the same workdir continues from step 4
  s = train.run(c, wd)
  assert s["step"] == 8
  assert [e["step"] for e in helpers.metrics(wd)] == [2, 4, 6, 8]
  for name in ("config.json", "summary.json", "plots/loss.png", "plots/accuracy.png"):
    assert os.path.exists(os.path.join(wd, name)), name
  assert os.listdir(os.path.join(wd, "tensorboard"))


def test_variant_names_are_checked():
  for module in (mnist1d, cnn_mnist):
    with pytest.raises(ValueError, match="Unknown variant"):
      module.get_config("qiuck")
