"""A smoke test per experiment: a few steps of the quick variant, then resume and continue."""

import json
import os

import numpy as np
import pytest

from aigc_jax import train
from aigc_jax.tools import sweep
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
  # The row aggregates the runs' own summaries: mean and sample std over the two seeds.
  accs = [json.load(open(tmp_path / f"modelcnn1d_seed{s}" / "summary.json"))["test_accuracy"]
          for s in (0, 1)]
  assert row["test_accuracy"]["values"] == accs
  assert row["test_accuracy"]["mean"] == pytest.approx(np.mean(accs))
  assert row["test_accuracy"]["std"] == pytest.approx(np.std(accs, ddof=1))
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


def test_every_experiment_config_validates_and_builds_its_model():
  """Each experiment module's default and quick configs pass the data-free checks and name a
  model that builds (a renamed key or field fails here, not after a user's data loads)."""
  import importlib  # pylint: disable=import-outside-toplevel
  import pkgutil  # pylint: disable=import-outside-toplevel

  import experiments  # pylint: disable=import-outside-toplevel
  from aigc_jax import models  # pylint: disable=import-outside-toplevel
  checked = []
  for info in pkgutil.iter_modules(experiments.__path__):
    module = importlib.import_module(f"experiments.{info.name}")
    if info.name == "common" or not hasattr(module, "get_config"):
      continue
    for variant in (None, "quick"):
      try:
        c = module.get_config(variant)
      except ValueError as e:
        assert "Unknown variant" in str(e)
        continue
      train.validate(c)
      overrides = {"vocab_size": 65} if "vocab_size" in c.model else {}
      models.get_model(c.model, **overrides)
      checked.append(f"{info.name}:{variant}")
  assert len(checked) >= 20 and "mlm_shakespeare_char:quick" in checked, checked
