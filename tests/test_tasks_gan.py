"""The GAN task: two players in one step, n_critic, EMA, exact resume, scores and errors."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from aigc_jax import checkpoint, evaluators, sharding, step as step_lib, train
from aigc_jax.errors import ConfigError
from aigc_jax.evaluators import fid
from aigc_jax.tasks import gan, get_task
from experiments import cgan_mnist, dcgan_mnist, wgan_gp_mnist
from tests import helpers


def _tiny(module=dcgan_mnist, tfds_dir="", data_dir="", scores=None, **gan_kw):
  c = module.get_config("quick")
  c.cpu_devices = 0
  c.model.width = 8
  c.model.latent_dim = 16
  c.data.tfds_dir, c.data.data_dir = tfds_dir, data_dir
  c.data.batch_size = 16 * c.gan.n_critic
  c.data.eval_batch_size = 200
  if scores:
    c.evals.scores.update(scores)
  else:
    del c.evals["scores"]
  c.gan.update(gan_kw)
  c.data.batch_size = 16 * c.gan.n_critic
  c.train.update(dict(num_steps=6, log_every_steps=2, eval_every_steps=3,
                      checkpoint_every_steps=3, progress_bar=False, best_metric=""))
  return c


def _state_and_step(c, batch):
  task = gan.make(c)
  mesh = sharding.make_mesh(c.mesh)
  spec = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in batch.items()}
  tx = step_lib.make_tx(task, c.optim, 10)
  _, state_sh, init = step_lib.sharded_state(task, tx, jax.random.PRNGKey(0), spec, mesh)
  state = init()
  step = step_lib.make_train_step(task, tx, state_sh, sharding.batch_sharding(mesh))
  return task, state, step, sharding.host_to_global(batch, mesh)


def _batch(n, labels=False):
  rng = np.random.default_rng(0)
  b = {"input": rng.uniform(-1, 1, (n, 28, 28, 1)).astype(np.float32)}
  if labels:
    b["label"] = rng.integers(0, 10, n).astype(np.int32)
  return b


def _adam_counts(opt_state):
  leaves = jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState))
  return [int(s.count) for s in leaves if isinstance(s, optax.ScaleByAdamState)]


def _copy(tree):
  return jax.tree.map(np.array, jax.device_get(tree))


def test_one_step_updates_both_players_and_the_critic_n_critic_times():
  c = _tiny(wgan_gp_mnist)
  assert c.gan.n_critic == 5
  _, state, step, batch = _state_and_step(c, _batch(c.data.batch_size))
  before = _copy(state.params)
  state, metrics = step(state, batch)
  after = _copy(state.params)
  for player in ("generator", "discriminator"):
    changed = jax.tree_util.tree_flatten_with_path(jax.tree.map(
        lambda a, b: not np.array_equal(a, b), before[player], after[player]))[0]
    # Every weight moves; the critic's output bias cannot: the Wasserstein loss's gradient
    # for it is mean(1) - mean(1) = 0 and the penalty does not see it.
    assert all(v for path, v in changed if "kernel" in jax.tree_util.keystr(path)), player
  assert _adam_counts(state.opt_state["discriminator"]) == [5]
  assert _adam_counts(state.opt_state["generator"]) == [1]
  for k in ("discriminator_loss", "generator_loss", "discriminator_gradient_penalty",
            "discriminator_wasserstein", "generator_grad_norm"):
    assert np.isfinite(float(metrics[k])), k
  state, _ = step(state, batch)
  assert _adam_counts(state.opt_state["discriminator"]) == [10]


def test_each_critic_update_reads_its_own_micro_batch():
  x = np.arange(12)
  micro = np.asarray(step_lib.micro_batches({"x": x}, 3)["x"])
  np.testing.assert_array_equal(micro, [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]])


def test_ema_follows_the_generator_with_warmup():
  c = _tiny(dcgan_mnist, ema_decay=0.999)
  _, state, step, batch = _state_and_step(c, _batch(c.data.batch_size))
  g0 = _copy(state.params["generator"])
  np.testing.assert_array_equal(jax.tree.leaves(_copy(state.model_state["ema"]))[0],
                                jax.tree.leaves(g0)[0])
  state, _ = step(state, batch)
  g1, ema = _copy(state.params["generator"]), _copy(state.model_state["ema"])
  d = min(0.999, 1.0 / 10.0)  # warm-up at step 0
  jax.tree.map(lambda e, a, b: np.testing.assert_allclose(e, d * a + (1 - d) * b, rtol=1e-5,
                                                          atol=1e-7), ema, g0, g1)
  assert not np.allclose(jax.tree.leaves(ema)[0], jax.tree.leaves(g1)[0])


def test_conditional_step_and_batch_norm_statistics_move():
  c = _tiny(cgan_mnist)
  _, state, step, batch = _state_and_step(c, _batch(c.data.batch_size, labels=True))
  bn = _copy(state.model_state["batch_stats"])
  state, _ = step(state, batch)
  moved = jax.tree.map(lambda a, b: not np.allclose(a, b), bn,
                       _copy(state.model_state["batch_stats"]))
  assert any(jax.tree.leaves(moved["generator"])) and any(jax.tree.leaves(moved["discriminator"]))


@pytest.fixture(scope="module")
def classifier(data_dir, tfds_dir, tmp_path_factory):
  return helpers.train_classifier(data_dir, tfds_dir, str(tmp_path_factory.mktemp("classifier")))


def _raw_state(workdir):
  mngr = ocp.CheckpointManager(os.path.join(workdir, "checkpoints"))
  step = mngr.latest_step()
  return step, ocp.StandardCheckpointer().restore(
      os.path.join(workdir, "checkpoints", str(step), "state"))


def test_interrupted_gan_resumes_the_whole_state_exactly(data_dir, tfds_dir, classifier,
                                                         tmp_path):
  c = _tiny(wgan_gp_mnist, tfds_dir, data_dir,
            scores=dict(samples=300, classifier_workdir=classifier))
  straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
  s1 = train.run(c, straight)
  c.train.num_steps = 3
  train.run(c, resumed)
  c.train.num_steps = 6
  s2 = train.run(c, resumed)
  (n1, a), (n2, b) = _raw_state(straight), _raw_state(resumed)
  assert n1 == n2 == 6
  assert set(a) >= {"params", "opt_state", "model_state", "rng", "step"}
  assert set(a["model_state"]) == {"batch_stats", "ema"}
  jax.tree.map(np.testing.assert_array_equal, a, b)
  assert s1 == s2
  # Scores: the real floor beside the generated values, a grid per evaluation.
  assert s1["scores_is_real"] > 5.0 and s1["scores_fid_floor"] < s1["scores_fid"]
  assert 1.0 <= s1["scores_is"] < s1["scores_is_real"]  # six steps in: below the real data's
  for name in ("samples_step_000003.png", "samples_step_000006.png",
               "scores_step_000006.json"):
    assert os.path.exists(os.path.join(straight, "samples", name)), name
  with open(os.path.join(straight, "samples", "scores_step_000006.json")) as f:
    scores = json.load(f)
  assert scores["samples"] == 300 and abs(sum(scores["class_fractions"]) - 1.0) < 1e-3
  assert s1["scores_class_min"] == pytest.approx(min(scores["class_fractions"]), abs=1e-4)
  assert s1["scores_class_max"] == pytest.approx(max(scores["class_fractions"]), abs=1e-4)
  events = helpers.metrics(straight, "scores")
  assert [e["step"] for e in events] == [3, 6] and "fid" in events[-1]
  assert [e["step"] for e in helpers.metrics(straight, "test")] == [3, 6]


def test_conditional_gan_reports_label_agreement(data_dir, tfds_dir, classifier, tmp_path):
  c = _tiny(cgan_mnist, tfds_dir, data_dir,
            scores=dict(samples=200, classifier_workdir=classifier))
  c.train.update(dict(num_steps=2, eval_every_steps=2, checkpoint_every_steps=2))
  s = train.run(c, str(tmp_path))
  # Recomputed here: the final generator's samples for the labels the evaluator asks for (one
  # batch of 200, its fixed key), scored by the classifier on one device. Sharded and
  # unsharded scores may flip a near-tied argmax, so one sample of slack.
  trained = checkpoint.load_workdir(str(tmp_path), "latest")
  task = get_task(trained.config)
  labels = task.eval_fns["labels"](200, False)
  key = jax.random.fold_in(jax.random.PRNGKey(c.seed + c.evals.scores.seed_offset), 0)
  images = task.eval_fns["sample"](trained.variables, key, 200, jnp.asarray(labels))
  scorer = fid.Classifier(classifier)
  _, probs = scorer.apply(scorer.params, (images + 1.0) / 2.0)
  agreement = float(np.mean(np.argmax(probs, axis=1) == labels))
  assert abs(s["scores_label_agreement"] - agreement) <= 1 / 200
  assert set(labels) == set(range(10))  # every class is asked for


@pytest.mark.parametrize("change,match", [
    ({"gan.n_critic": 0}, "at least one update"),
    ({"gan.loss": "least_squares"}, "valid: nonsaturating"),
    ({"gan.gp_weight": 10.0}, "model.critic=True"),
    ({"gan.ema_decay": 1.0}, "ema_decay"),
    ({"evals.scores": {"samples": 10, "classifier_workdir": "/nonexistent/classifier"}},
     "does not exist"),
    ({"evals.scores": {"samples": 0}}, "samples=0 must be >= 1"),
    ({"evals.scores": {"samples": 10}}, "never trains itself"),  # the scorer is prepared first
])
def test_bad_gan_config_is_a_clear_error(change, match, tmp_path, tfds_dir, data_dir):
  c = _tiny(dcgan_mnist, tfds_dir, data_dir)
  for k, v in change.items():
    section, key = k.split(".")
    if isinstance(v, dict):
      c[section][key] = evaluators.spec("fid", **v)
    else:
      c[section][key] = v
  with pytest.raises(ConfigError, match=match):
    train.run(c, str(tmp_path))


def test_data_errors_are_caught_before_compiling(data_dir, tfds_dir, tmp_path):
  c = _tiny(dcgan_mnist, tfds_dir, data_dir)
  c.model.image_size = 32
  with pytest.raises(ConfigError, match=r"generator makes \(32, 32, 1\).*resize\(32\)"):
    train.run(c, str(tmp_path / "a"))
  c = _tiny(cgan_mnist, tfds_dir, data_dir)
  c.data.preprocess += "|keep('input')"
  with pytest.raises(ConfigError, match="class-conditional GAN.*'label'"):
    train.run(c, str(tmp_path / "b"))
  c = _tiny(wgan_gp_mnist, tfds_dir, data_dir)
  c.data.batch_size = 64  # not 5 equal micro-batches over 8 devices
  with pytest.raises(ConfigError, match="divisible by 5 micro-batches"):
    train.run(c, str(tmp_path / "c"))


def test_variant_names_are_checked():
  for module in (dcgan_mnist, wgan_gp_mnist, cgan_mnist):
    with pytest.raises(ValueError, match="Unknown variant"):
      module.get_config("qiuck")
