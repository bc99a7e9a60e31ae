"""The evaluator seam: declared in config.evals, found by type, several per run with their own
splits and cadence, logged under their names; task sections; the loop knows no task."""

import inspect

import jax
import numpy as np
import pytest

from aigc_jax import evaluators, step as step_lib, train
from aigc_jax.errors import ConfigError
from aigc_jax import config as config_lib
from experiments import ae_mnist, cnn_mnist, dcgan_mnist, gpt_shakespeare_char, mnist1d
from tests import helpers


def test_several_evaluators_splits_and_cadences_in_one_run(tfds_dir, tmp_path):
  c = helpers.tiny_config(tfds_dir, num_steps=20)
  config_lib.add_eval(c, "train_fit", "metrics", split="train", every_steps=5)
  config_lib.add_eval(c, "pixels", "linear_probe", fn="input", every_steps=-1, l2_grid=(1e-2,))
  config_lib.add_eval(c, "pixels_knn", "knn", fn="input", every_steps=-1, k=5)
  s = train.run(c, str(tmp_path))
  steps = {name: [e["step"] for e in helpers.metrics(str(tmp_path), name)]
           for name in ("test", "train_fit", "pixels", "pixels_knn")}
  assert steps == {"test": [10, 20], "train_fit": [5, 10, 15, 20], "pixels": [20],
                   "pixels_knn": [20]}
  # Each split's own numbers: 3,500 training sequences vs 1,000 test ones.
  assert s["train_fit_accuracy"] != s["test_accuracy"]
  assert {"test_loss", "train_fit_loss", "pixels_accuracy", "pixels_l2",
          "pixels_knn_accuracy", "validation_accuracy_best"} <= set(s)
  assert "test_accuracy_best" not in s  # nothing is chosen on test
  # MNIST-1D's raw sequences: logistic regression ~32% (the paper's table), kNN below 60%.
  assert 0.2 < s["pixels_accuracy"] < 0.45 and 0.2 < s["pixels_knn_accuracy"] < 0.7


def test_evaluator_rng_is_per_name_and_step_and_replays():
  a = evaluators.rng_for(0, "iwae", 100)
  assert np.array_equal(a, evaluators.rng_for(0, "iwae", 100))
  for other in (evaluators.rng_for(0, "iwae", 200), evaluators.rng_for(0, "test", 100),
                evaluators.rng_for(1, "iwae", 100)):
    assert not np.array_equal(a, other)


@pytest.mark.parametrize("change,match", [
    (lambda c: c.evals.update({"x": {"type": "fid_score"}}),
     r"Unknown evaluator type 'fid_score'. Valid types: .*linear_probe"),
    (lambda c: c.evals.update({"x": {"every_steps": 5}}), "has no 'type'"),
    (lambda c: c.evals.update({"x": {"type": "knn", "neighbours": 3}}),
     r"unknown key\(s\) \['neighbours'\]"),
    (lambda c: config_lib.add_eval(c, "p", "linear_probe", augment="zoom(2)"),
     "Unknown augmentation op 'zoom'"),
    (lambda c: config_lib.add_eval(c, "p", "linear_probe"),
     "needs the task's 'encode' function, but task 'classify' provides"),
    (lambda c: setattr(c.train, "best_metric", "accuracy"),
     "best_metric='accuracy' must be '<evaluator>_<metric>'"),
    (lambda c: setattr(c.train, "best_metric", "test_accuracy"),
     r"'test_accuracy' would choose a checkpoint on the test split \('test' reads split 'test'\)"),
    (lambda c: (config_lib.add_eval(c, "held", "metrics", split="test[:50%]"),
                setattr(c.train, "best_metric", "held_loss")), "on the test split"),
    (lambda c: (config_lib.add_eval(c, "big", "metrics", batch_size=12),
                c.mesh.update(data=-1)), r"evals.big.batch_size .* not divisible"),
    (lambda c: setattr(c, "augment", "gaussian_noise(-1)"), "std"),
])
def test_bad_evaluator_configs_fail_before_compiling(tfds_dir, tmp_path, change, match,
                                                     monkeypatch):
  c = helpers.tiny_config(tfds_dir)
  change(c)
  compiled = []
  monkeypatch.setattr(step_lib, "make_train_step", lambda *a, **k: compiled.append(1))
  with pytest.raises(ConfigError, match=match):
    train.run(c, str(tmp_path))
  assert not compiled


def test_probe_on_a_split_without_labels_is_an_error(data_dir, tfds_dir, tmp_path, monkeypatch):
  c = ae_mnist.get_config("quick")
  c.data.update(data_dir=data_dir, tfds_dir=tfds_dir,
                preprocess="value_range(0, 1)|rename(image='input')|keep('input')")
  c.train.update(num_epochs=0.0, num_steps=2, progress_bar=False)
  monkeypatch.setattr(step_lib, "make_train_step", lambda *a, **k: pytest.fail("compiled"))
  with pytest.raises(ConfigError, match="Evaluator 'knn' needs labels but split 'train'"):
    train.run(c, str(tmp_path))


def test_task_settings_live_in_their_task_sections():
  cls, gan, lm = cnn_mnist.get_config(), dcgan_mnist.get_config(), gpt_shakespeare_char.get_config()
  assert "gan" not in cls and "lm" not in cls and "loss" not in cls
  assert "sample_tokens" not in cls.train and "sample_tokens" not in lm.train
  assert set(gan.gan) >= {"loss", "n_critic", "gp_weight", "ema_decay"} and "lm" not in gan
  assert lm.lm.z_loss == 0.0 and lm.evals.samples.type == "text_sample"
  assert set(gan.evals) == {"test", "samples", "scores"}
  assert set(cls.evals) == {"validation", "test"}
  assert set(mnist1d.get_config().evals) == {"validation", "test"}


def test_unknown_task_key_lists_the_valid_ones():
  from aigc_jax import main  # pylint: disable=import-outside-toplevel
  msg = main._unknown_key(["--config.gan.loss=hinge"], "experiments/cnn_mnist.py")
  assert "config has no 'gan'" in msg and "evals" in msg and "optim" in msg
  msg = main._unknown_key(["--config.evals.scores.sample=5"], "experiments/dcgan_mnist.py")
  assert "config.evals.scores has no 'sample'" in msg and "samples" in msg
  assert main._unknown_key(["--config.lm.z_loss=1e-4"],
                           "experiments/gpt_shakespeare_char.py") is None


def test_the_loop_knows_no_task():
  src = inspect.getsource(train)
  for word in ("tokenizer", "clean", "accuracy", "gan", "sample"):
    assert word not in src, word


def test_two_views_reach_the_task_as_the_batch_it_sees(tfds_dir, tmp_path):
  c = helpers.tiny_config(tfds_dir, num_steps=4)
  c.augment = "views(2)|gaussian_noise(0.1)"
  c.evals, c.train.best_metric = {}, ""  # the classifier's metrics read single views
  train.run(c, str(tmp_path))
  _, params = helpers.final_params(str(tmp_path))
  # The MLP flattens [B, 2, 40]: its first layer reads both views (80 inputs).
  first = params["Dense_0"]["Dense_0"]["kernel"]
  assert first.shape[0] == 80


def test_a_best_metric_its_evaluator_does_not_report_is_named(tfds_dir, tmp_path):
  c = helpers.tiny_config(tfds_dir, num_steps=10)
  c.train.best_metric = "validation_acc"
  with pytest.raises(ConfigError, match="'validation_acc' is not among .* valid: "
                                        "validation_accuracy, validation_loss"):
    train.run(c, str(tmp_path))
