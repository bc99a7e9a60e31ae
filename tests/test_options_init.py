"""Pretrain-then-transfer seams: one workdir loader, init from a checkpoint, frozen parameters."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aigc_jax import checkpoint, sharding, step as step_lib, train
from aigc_jax.options import init as transfer
from aigc_jax.errors import ConfigError
from aigc_jax.tasks import get_task
from experiments import ae_mnist, transfer_mnist
from tests import helpers


@pytest.fixture(scope="module")
def pretrained(data_dir, tfds_dir, tmp_path_factory):
  """A small autoencoder trained for a few steps: the encoder to transfer."""
  c = ae_mnist.get_config("quick")
  c.model.update(hidden=(64,), latent_dim=8)
  c.data.update(data_dir=data_dir, tfds_dir=tfds_dir, batch_size=64)
  c.evals = {"test": c.evals.test}
  c.train.update(num_epochs=0.0, num_steps=10, eval_every_steps=10, checkpoint_every_steps=5,
                 progress_bar=False, best_metric="")
  wd = str(tmp_path_factory.mktemp("ae"))
  train.run(c, wd)
  return wd


def _classifier(data_dir, tfds_dir, init_workdir="", **kw):
  c = transfer_mnist.classifier_config("ae", 10, 0, init_workdir)
  c.model.encoder.update(hidden=(64,), latent_dim=8)
  c.data.update(data_dir=data_dir, tfds_dir=tfds_dir, batch_size=96)
  c.train.update(num_steps=4, log_every_steps=2, eval_every_steps=4, checkpoint_every_steps=4,
                 progress_bar=False)
  for k, v in kw.items():
    c[k] = v
  return c


def test_load_workdir_reads_latest_or_best_and_names_what_is_missing(pretrained, tmp_path):
  latest = checkpoint.load_workdir(pretrained, "latest")
  assert latest.step == 10 and latest.config.task == "autoencoder"
  assert set(latest.variables["params"]) == {"encoder", "decoder"}
  best = checkpoint.load_workdir(pretrained, "best")  # no best/ kept: falls back to the latest
  assert best.step == 10
  model = latest.model()
  x = np.zeros((2, 28, 28), np.float32)
  assert model.apply(latest.variables, x, method=model.encode).shape == (2, 8)
  with pytest.raises(ConfigError, match="does not exist"):
    checkpoint.load_workdir(str(tmp_path / "nowhere"))
  (tmp_path / "empty").mkdir()
  (tmp_path / "empty" / "config.json").write_text("{}")
  with pytest.raises(ConfigError, match="No checkpoint in"):
    checkpoint.load_workdir(str(tmp_path / "empty"))


def test_init_copies_the_encoder_and_freeze_keeps_it_bitwise(pretrained, data_dir, tfds_dir,
                                                             tmp_path):
  old = checkpoint.load_workdir(pretrained, "latest").variables["params"]["encoder"]
  c = _classifier(data_dir, tfds_dir, pretrained, freeze="^encoder/")
  train.run(c, str(tmp_path))
  _, params = helpers.final_params(str(tmp_path))
  jax.tree.map(np.testing.assert_array_equal, params["encoder"], old)
  # The head trained; the frozen encoder has no Adam moments in the optimiser state.
  fresh = _classifier(data_dir, tfds_dir)
  train.run(fresh, str(tmp_path / "scratch"))
  _, scratch = helpers.final_params(str(tmp_path / "scratch"))
  assert not np.array_equal(params["head"]["logits"]["Dense_0"]["kernel"],
                            scratch["head"]["logits"]["Dense_0"]["kernel"])
  assert not np.array_equal(scratch["encoder"]["code"]["Dense_0"]["kernel"],
                            old["code"]["Dense_0"]["kernel"])

  def moments(wd):  # Adam's mu and nu of the 784 x 64 encoder kernel, if any
    return sum(np.shape(x) == (784, 64) for x in jax.tree.leaves(helpers.final_state(wd)[1]
                                                                  ["opt_state"]))
  assert moments(str(tmp_path)) == 0 and moments(str(tmp_path / "scratch")) == 2


def test_init_without_freeze_starts_from_the_encoder_and_trains_it(pretrained, data_dir,
                                                                   tfds_dir):
  old = checkpoint.load_workdir(pretrained, "latest").variables["params"]["encoder"]
  c = _classifier(data_dir, tfds_dir, pretrained)
  task = get_task(c)
  spec = {"input": jax.ShapeDtypeStruct((96, 28, 28), jnp.float32),
          "label": jax.ShapeDtypeStruct((96,), jnp.int32)}
  mesh = sharding.make_mesh(c.mesh)
  abstract = step_lib.unbox(jax.eval_shape(task.init, jax.random.PRNGKey(0), spec)["params"])
  loaded = transfer.load_init(c.init, abstract)
  tx = step_lib.make_tx(task, c.optim, 10)
  _, _, init = step_lib.sharded_state(task, tx, jax.random.PRNGKey(0), spec, mesh)
  state = init(loaded)
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), b),
               state.params["encoder"], old)
  # The loaded arrays are arguments of the jitted init, not constants inside it: the traced
  # program closes over no array of the encoder's, while one that captures them does.
  leaves = jax.tree.leaves(loaded)
  rng = jax.random.PRNGKey(0)
  assert not _captured(jax.make_jaxpr(init.jitted)(rng, loaded), leaves)
  baked = jax.make_jaxpr(jax.jit(lambda r: init.jitted.__wrapped__(r, loaded)))(rng)
  assert len(_captured(baked, leaves)) == len(leaves)


def _captured(closed_jaxpr, arrays) -> list:
  """The `arrays` held as constants anywhere in `closed_jaxpr` (nested jit calls included)."""
  consts, todo = [], [closed_jaxpr]
  while todo:
    j = todo.pop()
    consts.extend(j.consts)
    for eqn in j.jaxpr.eqns:
      todo.extend(v for v in eqn.params.values() if hasattr(v, "consts") and hasattr(v, "jaxpr"))
  return [a for a in arrays
          if any(np.shape(c) == np.shape(a) and np.array_equal(np.asarray(c), a) for c in consts)]


@pytest.mark.parametrize("change,match", [
    ({"init.workdir": "/nonexistent/run"}, "does not exist"),
    ({"init.map": "encoder<-decoder"}, "subtrees hold different parameters"),
    ({"init.map": "head<-encoder"}, "subtrees hold different parameters"),
    ({"init.map": "encoder<-nothing"}, "have no 'nothing'"),
    ({"model.encoder.latent_dim": 5}, r"shape mismatch: new encoder/code/Dense_0/bias is "
                                      r"\(5,\) but .*'s encoder/code/Dense_0/bias is \(8,\)"),
    ({"freeze": "^nothing/"}, "matches no parameter. Parameter paths: encoder/"),
    ({"freeze": "enc(oder"}, "not a regular expression"),
    ({"init.checkpoint": "newest"}, "valid: best, latest"),
])
def test_bad_transfer_configs_fail_before_compiling(pretrained, data_dir, tfds_dir, tmp_path,
                                                    change, match, monkeypatch):
  c = _classifier(data_dir, tfds_dir, pretrained)
  for k, v in change.items():
    node = c
    *parents, leaf = k.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = v
  compiled = []
  monkeypatch.setattr(step_lib, "make_train_step", lambda *a, **k: compiled.append(1))
  with pytest.raises(ConfigError, match=match):
    train.run(c, str(tmp_path))
  assert not compiled


def test_init_with_no_checkpoint_is_an_error(data_dir, tfds_dir, tmp_path):
  (tmp_path / "run").mkdir()
  (tmp_path / "run" / "config.json").write_text("{}")
  c = _classifier(data_dir, tfds_dir, str(tmp_path / "run"))
  with pytest.raises(ConfigError, match="No checkpoint in"):
    train.run(c, str(tmp_path / "new"))


def test_parse_map():
  assert transfer.parse_map("") == [("", "")]
  assert transfer.parse_map("encoder") == [("encoder", "encoder")]
  assert transfer.parse_map(" a/b <- c , d<-e/f/") == [("a/b", "c"), ("d", "e/f")]


def test_fine_tuning_from_another_architecture_names_the_mismatch(pretrained, data_dir,
                                                                  tfds_dir, tmp_path):
  # A convolutional encoder cannot start from the pretrained MLP encoder: the error lists the
  # parameters only one side has, before anything is compiled.
  c = _classifier(data_dir, tfds_dir, pretrained)
  c.model.encoder.update(kind="conv", hidden=(8, 16))
  with pytest.raises(ConfigError, match=r"subtrees hold different parameters \(only new: "
                                        r"\['conv_0/.*only old: \['hidden_0/"):
    train.run(c, str(tmp_path))


def test_tuned_rows_choose_on_validation_and_reuse_the_chosen_run(data_dir, tfds_dir, tmp_path):
  """A grid entry that cannot learn (rate 0) loses on validation; the chosen entry's run is the
  first seed's table cell and the other seed trains with the chosen rate."""
  def classifier(rep, n, seed, init_workdir, probe):
    c = transfer_mnist.classifier_config("pixels", n, seed, "", probe)
    c.data.update(data_dir=data_dir, tfds_dir=tfds_dir, batch_size=96)
    if not probe:
      c.train.update(num_epochs=0.0, num_steps=30, eval_every_steps=30,
                     checkpoint_every_steps=30, progress_bar=False)
    return c

  spec = transfer_mnist.Table(rows=("pixels",), pretrain=None, pretrained=(),
                              classifier=classifier, names={}, title="t", labels=(10,),
                              seeds=(0, 1), tuned=("pixels",),
                              grid=({"optim.lr": 0.0}, {"optim.lr": 3e-3}))
  table = transfer_mnist.run(str(tmp_path), spec=spec)
  tuning = table["pixels"]["tuning"]["10"]
  assert tuning["chosen"] == {"optim.lr": 3e-3}
  scores = tuning["validation_accuracy"]
  assert scores["lr=0.003"] > scores["lr=0"] + 0.3  # 30 Adam steps vs the untrained head
  chosen_run = tmp_path / "tune" / "pixels_labels10_seed0_lr=0.003"
  first = json.loads((chosen_run / "summary.json").read_text())["test_accuracy"]
  assert table["pixels"]["finetune_10"]["values"][0] == first
  second = json.loads((tmp_path / "finetune" / "pixels_labels10_seed1" / "config.json").read_text())
  assert second["optim"]["lr"] == 3e-3
  assert not (tmp_path / "finetune" / "pixels_labels10_seed0").exists()
  assert "chosen lr=0.003 on validation" in (tmp_path / "transfer.md").read_text()
