import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from aigc_jax import sharding, train
from aigc_jax.errors import ConfigError
from tests import helpers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_one_device_and_eight_device_mesh_give_the_same_losses(tfds_dir, tmp_path):
  c1 = helpers.tiny_config(tfds_dir, num_steps=30)
  c8 = helpers.tiny_config(tfds_dir, num_steps=30)
  c8.mesh.update(dict(data=4, fsdp=2, tensor=1))
  train.run(c1, str(tmp_path / "one"), devices=jax.devices()[:1])
  train.run(c8, str(tmp_path / "eight"))
  l1 = [e["loss"] for e in helpers.metrics(str(tmp_path / "one"))]
  l8 = [e["loss"] for e in helpers.metrics(str(tmp_path / "eight"))]
  assert len(l1) == len(l8) == 6
  assert l1[-1] < l1[0]  # it learns
  np.testing.assert_allclose(l8, l1, rtol=2e-5)
  s1, s8 = helpers.summary(str(tmp_path / "one")), helpers.summary(str(tmp_path / "eight"))
  assert s8["test_accuracy"] == pytest.approx(s1["test_accuracy"], abs=1e-3)


@pytest.mark.parametrize("augment", ["", "gaussian_noise(0.5)"])
def test_interrupted_run_resumes_bitwise(tfds_dir, tmp_path, monkeypatch, augment):
  cfg = helpers.tiny_config(tfds_dir)
  cfg.augment = augment  # on-device draws from the step's key replay exactly on resume
  train.run(cfg, str(tmp_path / "straight"))
  if augment:  # and they change training
    plain = helpers.tiny_config(tfds_dir)
    train.run(plain, str(tmp_path / "plain"))
    assert helpers.metrics(str(tmp_path / "plain"))[0]["loss"] != \
        helpers.metrics(str(tmp_path / "straight"))[0]["loss"]

  real = sharding.host_to_global
  calls = {"n": 0}

  def crash_at_step_15(batch, mesh):
    # Training batches (of the train batch size; evaluation's are larger) until step 15.
    if len(next(iter(batch.values()))) == cfg.data.batch_size:
      calls["n"] += 1
      if calls["n"] > 15:
        raise RuntimeError("simulated crash")
    return real(batch, mesh)

  monkeypatch.setattr(sharding, "host_to_global", crash_at_step_15)
  with pytest.raises(RuntimeError, match="simulated crash"):
    train.run(cfg, str(tmp_path / "crashed"))
  monkeypatch.setattr(sharding, "host_to_global", real)
  step, _ = helpers.final_params(str(tmp_path / "crashed"))
  assert step == 10
  train.run(cfg, str(tmp_path / "crashed"))  # resumes from step 10

  step_a, params_a = helpers.final_params(str(tmp_path / "straight"))
  step_b, params_b = helpers.final_params(str(tmp_path / "crashed"))
  assert step_a == step_b == 20
  for a, b in zip(jax.tree.leaves(params_a), jax.tree.leaves(params_b)):
    np.testing.assert_array_equal(a, b)
  assert helpers.summary(str(tmp_path / "straight")) == helpers.summary(str(tmp_path / "crashed"))
  steps = [e["step"] for e in helpers.metrics(str(tmp_path / "crashed"))]
  assert steps == [5, 10, 15, 20]  # no duplicated or lost log lines


def test_finished_run_says_so(tfds_dir, tmp_path, capsys):
  cfg = helpers.tiny_config(tfds_dir, num_steps=10)
  first = train.run(cfg, str(tmp_path))
  again = train.run(cfg, str(tmp_path))
  assert again == first
  assert "already finished" in capsys.readouterr().out


@pytest.mark.parametrize("change,match", [
    (lambda c: setattr(c, "task", "clasify"), r"Unknown task 'clasify'. Valid tasks: audio_lm, autoencoder, classify"),
    (lambda c: setattr(c.model, "name", "resnet9000"), "Unknown model 'resnet9000'"),
    (lambda c: c.data.update(dict(batch_size=60)), "not divisible by the data-parallel size 8"),
    (lambda c: c.train.update(dict(num_epochs=1.0)), "exactly one of train.num_steps"),
    (lambda c: c.data.update(dict(preprocess="")), r"needs batch feature\(s\) \['input'\]"),
])
def test_bad_config_fails_before_compiling(tfds_dir, tmp_path, change, match):
  cfg = helpers.tiny_config(tfds_dir)
  cfg.mesh.data = -1
  change(cfg)
  with pytest.raises(ConfigError, match=match):
    train.run(cfg, str(tmp_path))
  assert not os.path.exists(tmp_path / "checkpoints")


def test_unknown_model_field_lists_valid_fields(tfds_dir, tmp_path):
  cfg = helpers.tiny_config(tfds_dir)
  with cfg.unlocked():
    cfg.model.widht = 3
  with pytest.raises(ConfigError, match=r"no field\(s\) \['widht'\]; valid fields: .*hidden"):
    train.run(cfg, str(tmp_path))


def _cli(workdir, *extra, env=None):
  cmd = [sys.executable, "-m", "aigc_jax.main", "--config=experiments/mnist1d.py",
         f"--workdir={workdir}", "--config.sweep=()", "--config.model.name=mlp",
         "--config.train.num_steps=300", "--config.train.checkpoint_every_steps=50",
         "--config.train.eval_every_steps=100", "--config.train.progress_bar=False", *extra]
  return cmd


def _env(tfds_dir):
  return dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO,
              AIGC_JAX_DATA=os.environ.get("AIGC_JAX_DATA", ""))


def _wait_for_checkpoint(workdir, proc, timeout=120):
  deadline = time.time() + timeout
  ckpt = os.path.join(workdir, "checkpoints")
  while time.time() < deadline and proc.poll() is None:
    if os.path.isdir(ckpt) and any(d.isdigit() for d in os.listdir(ckpt)):
      return
    time.sleep(0.05)
  raise AssertionError("no checkpoint appeared")


def test_kill_9_and_sigterm_then_rerun_give_the_same_summary(tfds_dir, tmp_path):
  tfds = f"--config.data.tfds_dir={tfds_dir}"
  env = _env(tfds_dir)
  straight = tmp_path / "straight"
  subprocess.run(_cli(straight, tfds), env=env, cwd=REPO, check=True, capture_output=True)

  killed = tmp_path / "killed"
  proc = subprocess.Popen(_cli(killed, tfds), env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  _wait_for_checkpoint(str(killed), proc)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not os.path.exists(killed / "summary.json")
  subprocess.run(_cli(killed, tfds), env=env, cwd=REPO, check=True, capture_output=True)

  preempted = tmp_path / "preempted"
  proc = subprocess.Popen(_cli(preempted, tfds), env=env, cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  _wait_for_checkpoint(str(preempted), proc)
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate()
  assert proc.returncode == 143, out
  assert "Preempted: checkpoint" in out
  subprocess.run(_cli(preempted, tfds), env=env, cwd=REPO, check=True, capture_output=True)

  expected = helpers.summary(str(straight))
  assert expected["step"] == 300
  assert helpers.summary(str(killed)) == expected
  assert helpers.summary(str(preempted)) == expected


def test_unknown_config_key_on_the_command_line_lists_valid_keys(tmp_path):
  out = subprocess.run(_cli(tmp_path, "--config.optim.learning_rate=0.1"), env=_env(""),
                       cwd=REPO, capture_output=True, text=True)
  assert out.returncode != 0
  assert "'optim.learning_rate'" in out.stderr and " lr, " in out.stderr  # valid keys listed


def test_rerun_with_a_damaged_latest_checkpoint_resumes_from_the_previous(tfds_dir, tmp_path,
                                                                          capsys):
  import shutil  # pylint: disable=import-outside-toplevel
  wd = str(tmp_path)
  train.run(helpers.tiny_config(tfds_dir, num_steps=20), wd)
  state = os.path.join(wd, "checkpoints", "20", "state")
  for sub in os.listdir(state):
    if sub.startswith("ocdbt") or sub == "d":
      shutil.rmtree(os.path.join(state, sub))
  capsys.readouterr()
  s = train.run(helpers.tiny_config(tfds_dir, num_steps=30), wd)
  out = capsys.readouterr().out
  assert "Checkpoint 20 cannot be restored" in out and "resumed from checkpoint 10" in out
  assert s["step"] == 30 and os.listdir(os.path.join(wd, "checkpoints.damaged"))
  assert [m["step"] for m in helpers.metrics(wd)][-3:] == [20, 25, 30]


def test_command_line_duration_replaces_the_experiments():
  from aigc_jax import main  # pylint: disable=import-outside-toplevel
  from experiments import ae_mnist  # pylint: disable=import-outside-toplevel
  c = ae_mnist.get_config()  # defined in epochs
  c.train.num_steps = 5  # what --config.train.num_steps=5 sets
  main._command_line_duration_wins(c, ["x", "--config.train.num_steps=5"])  # pylint: disable=protected-access
  assert (c.train.num_steps, c.train.num_epochs) == (5, 0.0)
  train.validate(c)
  c.train.num_epochs = 2.0  # both on the command line: still refused, the user must choose
  main._command_line_duration_wins(  # pylint: disable=protected-access
      c, ["x", "--config.train.num_steps=5", "--config.train.num_epochs=2"])
  with pytest.raises(ConfigError, match="exactly one of"):
    train.validate(c)
