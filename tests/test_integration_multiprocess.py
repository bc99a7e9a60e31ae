"""Real multi-process training: two OS processes of 4 CPU devices each, joined by
jax.distributed (gloo collectives on CPU), against one process of 8 devices; kill -9 of both
and a rerun of the same commands resume from the last checkpoint."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests import helpers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHORT = ["--config.train.num_steps=40", "--config.train.eval_every_steps=20",
         "--config.train.checkpoint_every_steps=20", "--config.train.log_every_steps=10"]
CONFIGS = {
    "cnn_mnist": ["--config=experiments/cnn_mnist.py:quick"],
    "gpt": ["--config=experiments/gpt_shakespeare_char.py:quick", "--config.model.num_layers=1",
            "--config.model.width=32", "--config.model.num_heads=2",
            "--config.data.batch_size=16", "--config.data.eval_batch_size=4096",
            "--config.evals.samples.max_new_tokens=20"],
}


def _port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _command(workdir, tfds_dir, args, devices):
  return [sys.executable, "-m", "aigc_jax.main", f"--workdir={workdir}", *args,
          f"--config.cpu_devices={devices}", f"--config.data.tfds_dir={tfds_dir}",
          "--config.train.progress_bar=False"]


def _env(data_dir):
  env = dict(os.environ, JAX_PLATFORMS="cpu", AIGC_JAX_DATA=data_dir)
  env.pop("XLA_FLAGS", None)
  # No shared compilation cache (conftest.py): with one, a process can load the executable the
  # other process compiled, and their gloo collectives then wait for each other forever (seen
  # with jax 0.12.1 on CPU: both processes hang in the first train or eval step).
  env.pop("JAX_COMPILATION_CACHE_DIR", None)
  return env


def _start_two(workdir, tfds_dir, data_dir, args):
  port = _port()
  return [subprocess.Popen(
      _command(workdir, tfds_dir, args, 4) + [
          "--num_processes=2", f"--process_id={i}", f"--coordinator_address=127.0.0.1:{port}"],
      cwd=REPO, env=_env(data_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
      for i in range(2)]


def _wait(procs, timeout=300):
  outs = []
  for p in procs:
    out, _ = p.communicate(timeout=timeout)
    outs.append(out)
  assert all(p.returncode == 0 for p in procs), "\n\n".join(
      f"process {i}, exit status {p.returncode}:\n{_errors(o)}{o[-3000:]}"
      for i, (p, o) in enumerate(zip(procs, outs)))
  return outs


def _errors(out: str) -> str:
  """The lines that say why a process died, wherever they are in its output."""
  keys = ("Error", "error", "Fatal", "Check failed", "Aborted", "F0000", "E0000")
  lines = [line for line in out.splitlines() if any(k in line for k in keys)]
  return "".join(f"  {line[:500]}\n" for line in lines[:20])


def _one(workdir, tfds_dir, data_dir, args):
  out = subprocess.run(_command(workdir, tfds_dir, args, 8), cwd=REPO, env=_env(data_dir),
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]


def _close(a: dict, b: dict):
  assert a.keys() == b.keys()
  for k in a:
    if isinstance(a[k], str):
      assert a[k] == b[k], k
    else:
      assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-6), k


@pytest.mark.parametrize("name", list(CONFIGS))
def test_two_processes_train_like_one_process_of_eight_devices(name, data_dir, tfds_dir,
                                                                tmp_path):
  if name == "gpt" and not os.path.isdir(os.path.join(data_dir, "tinyshakespeare")):
    pytest.skip("no tiny Shakespeare")
  args = CONFIGS[name] + SHORT
  one, two = str(tmp_path / "one"), str(tmp_path / "two")
  _one(one, tfds_dir, data_dir, args)
  _wait(_start_two(two, tfds_dir, data_dir, args))
  # Both processes wrote their shards of the checkpoint.
  assert os.path.isdir(os.path.join(two, "checkpoints", "40", "state", "ocdbt.process_1"))
  _close(helpers.summary(one), helpers.summary(two))
  logs = helpers.metrics(one, "train"), helpers.metrics(two, "train")
  assert [e["step"] for e in logs[0]] == [e["step"] for e in logs[1]] == [10, 20, 30, 40]
  for a, b in zip(*logs):
    a.pop("examples_per_sec"), b.pop("examples_per_sec")
    _close(a, b)
  _, p1 = helpers.final_params(one)
  _, p2 = helpers.final_params(two)
  import jax  # pylint: disable=import-outside-toplevel
  # Cross-process all-reduces sum in another order; Adam magnifies that on tiny gradients.
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-3, atol=1e-4), p1, p2)


def test_both_processes_killed_then_rerun_resume_from_the_checkpoint(data_dir, tfds_dir,
                                                                      tmp_path):
  args = CONFIGS["cnn_mnist"] + SHORT + ["--config.train.num_steps=60"]
  straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")
  _wait(_start_two(straight, tfds_dir, data_dir, args))
  procs = _start_two(killed, tfds_dir, data_dir, args)
  done = os.path.join(killed, "checkpoints", "20", "commit_success.txt")
  deadline = time.time() + 300
  while not os.path.exists(done) and time.time() < deadline:
    assert all(p.poll() is None for p in procs), "a process ended before its first checkpoint"
    time.sleep(0.2)
  for p in procs:
    p.send_signal(signal.SIGKILL)
    p.wait()
  assert not os.path.exists(os.path.join(killed, "summary.json"))
  outs = _wait(_start_two(killed, tfds_dir, data_dir, args))
  assert any("Resuming from checkpoint" in o for o in outs)
  with open(os.path.join(killed, "summary.json")) as f:
    resumed = json.load(f)
  _close(helpers.summary(straight), resumed)
