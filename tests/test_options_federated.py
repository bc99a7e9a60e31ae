"""Federated averaging: client partitions, one vmapped round equals a loop over the clients,
FedSGD equals SGD on the union, runs resume exactly, DP-FedAvg reports epsilon."""

import json
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from aigc_jax import train
from aigc_jax.options import federated
from aigc_jax.errors import ConfigError
from aigc_jax.tasks import get_task
from experiments import fedavg_mnist
from tests import helpers


def _fed(**kw):
  c = ml_collections.ConfigDict({"enabled": True, "clients": 10, "fraction": 0.4,
                                 "local_epochs": 2, "local_batch": 5, "client_lr": 0.1,
                                 "split": "iid", "dp_clip": 0.0, "dp_noise": 0.0})
  c.update(kw)
  return c


def test_partitions():
  labels = np.repeat(np.arange(10), 20)  # 200 examples, 20 of each label
  iid = federated.partition(labels, _fed(), 0)
  assert iid.shape == (10, 20) and len(np.unique(iid)) == 200
  shards = federated.partition(labels, _fed(split="shards"), 0)
  assert shards.shape == (10, 20) and len(np.unique(shards)) == 200
  assert all(len(np.unique(labels[s])) <= 2 for s in shards)  # two label shards a client
  assert np.mean([len(np.unique(labels[s])) for s in iid]) > 5


def _tiny(tfds_dir):
  c = helpers.tiny_config(tfds_dir)
  task = get_task(c)
  rng = np.random.default_rng(0)
  batch = {"input": jnp.asarray(rng.normal(size=(4, 20, 40)), jnp.float32),
           "label": jnp.asarray(rng.integers(0, 10, size=(4, 20)), jnp.int32)}
  spec = {k: jax.ShapeDtypeStruct(v.shape[1:], v.dtype) for k, v in batch.items()}
  params = jax.tree.map(lambda x: getattr(x, "value", x),
                        task.init(jax.random.PRNGKey(0), spec)["params"],
                        is_leaf=lambda x: hasattr(x, "value"))
  grad_fn = jax.value_and_grad(lambda p, ms, mb, key: task.loss(p, ms, mb, key, 0),
                               has_aux=True)
  return grad_fn, params, batch


def test_vmapped_round_equals_a_loop_over_clients(tfds_dir):
  grad_fn, params, batch = _tiny(tfds_dir)
  fed = dict(_fed())
  rng = jax.random.PRNGKey(3)
  _, neg_mean, _ = federated.round_update(grad_fn, params, {}, batch, rng, fed)
  keys = jax.random.split(rng, 4)
  deltas = []
  for k in range(4):  # each client alone, its local steps one by one
    p = params
    for i in range(2 * 4):  # 2 epochs of 20 examples in batches of 5
      perm = jax.random.permutation(jax.random.fold_in(keys[k], i // 4), 20)
      idx = perm[(i % 4) * 5:(i % 4) * 5 + 5]
      mb = {key: v[k][idx] for key, v in batch.items()}
      _, g = grad_fn(p, {}, mb, jax.random.fold_in(keys[k], 8 + i))
      p = jax.tree.map(lambda w, gw: w - 0.1 * gw, p, g)
    deltas.append(jax.tree.map(jnp.subtract, p, params))
  want = jax.tree.map(lambda *d: -jnp.mean(jnp.stack(d), axis=0), *deltas)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-7),
               neg_mean, want)


def test_fedsgd_round_is_sgd_on_the_union(tfds_dir):
  grad_fn, params, batch = _tiny(tfds_dir)
  fed = dict(_fed(local_epochs=1, local_batch=0, client_lr=0.5))
  _, neg_mean, _ = federated.round_update(grad_fn, params, {}, batch, jax.random.PRNGKey(0), fed)
  union = {k: v.reshape((-1,) + v.shape[2:]) for k, v in batch.items()}
  _, g = grad_fn(params, {}, union, jax.random.PRNGKey(0))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, 0.5 * b, rtol=1e-4, atol=1e-7),
               neg_mean, g)


def _fed_config(tfds_dir, **fed):
  c = helpers.tiny_config(tfds_dir, num_steps=8, log_every_steps=4, eval_every_steps=4,
                          checkpoint_every_steps=4)
  c.optim.update(name="sgd", lr=1.0)
  c.fed.update(dict(enabled=True, clients=35, fraction=0.2, local_epochs=1, local_batch=20,
                    client_lr=0.3, split="iid"))  # 7 clients a round, 100 examples each
  c.fed.update(fed)
  return c


def test_federated_run_learns_and_resumes_exactly(tfds_dir, tmp_path, monkeypatch):
  c = _fed_config(tfds_dir)
  s1, s2 = helpers.crash_and_resume(c, tmp_path, monkeypatch, after_batches=5)
  assert s1 == s2
  logged = helpers.metrics(str(tmp_path / "straight"))
  assert logged[-1]["loss"] < logged[0]["loss"] and logged[0]["client_update_norm"] > 0
  assert s1["test_accuracy"] > 0.2  # 8 rounds of 7 clients beat chance (10%)


def test_dp_fedavg_reports_epsilon(tfds_dir, tmp_path):
  c = _fed_config(tfds_dir, dp_clip=0.5, dp_noise=1.0)
  s = train.run(c, str(tmp_path / "dp"))
  assert s["epsilon"] > 0 and s["dp_sampling_rate"] == pytest.approx(7 / 35)
  assert 0 <= helpers.metrics(str(tmp_path / "dp"))[-1]["clipped_fraction"] <= 1


def test_bad_federated_settings(tfds_dir, tmp_path):
  for fed, match in (({"clients": 5000}, "fed.clients=5000 for 3500 training examples"),
                     ({"fraction": 0.0}, r"fed.fraction=0.0 must be in \(0, 1\]"),
                     ({"local_batch": 7}, "must divide each client's 100 examples"),
                     ({"split": "dirichlet"}, "fed.split='dirichlet'; valid: iid, shards"),
                     ({"dp_clip": 1.0}, "needs both > 0")):
    c = _fed_config(tfds_dir, **fed)
    with pytest.raises(ConfigError, match=match):
      train.run(c, str(tmp_path / "x"))


def test_fedavg_experiment_configs():
  for v in fedavg_mnist.VARIANTS:
    c = fedavg_mnist.get_config(v)
    assert c.fed.enabled
  sgd = fedavg_mnist.get_config("fedsgd_iid")
  assert sgd.fed.local_batch == 0 and sgd.fed.local_epochs == 1
  assert fedavg_mnist.get_config("fedavg_shards").fed.split == "shards"
  # Both methods are evaluated at the same cadence, so neither crossing is seen earlier.
  assert sgd.train.eval_every_steps == fedavg_mnist.get_config("fedavg_iid").train.eval_every_steps


def test_rounds_to_target_needs_a_sustained_crossing(tmp_path):
  curve = [(5, 0.90), (10, 0.951), (15, 0.94), (20, 0.95), (25, 0.96), (30, 0.955), (35, 0.93)]
  with open(tmp_path / "metrics.jsonl", "w") as f:
    for step, acc in curve:
      f.write(json.dumps({"split": "test", "step": step, "accuracy": acc}) + "\n")
      f.write(json.dumps({"split": "validation", "step": step, "accuracy": 0.99}) + "\n")
  assert fedavg_mnist.rounds_to(str(tmp_path))[0] == 20  # round 10's lone crossing does not count
  assert fedavg_mnist.rounds_to(str(tmp_path), sustain=1)[0] == 10
  assert fedavg_mnist.rounds_to(str(tmp_path), sustain=4)[0] is None
  assert fedavg_mnist.rounds_to(str(tmp_path), "validation")[0] == 5
