"""The scaling study (experiments/scaling_shakespeare.py) end to end at a toy size."""

import json
import os

import pytest

from aigc_jax import main as main_lib
from aigc_jax import registry
from aigc_jax.errors import ConfigError
from experiments import scaling_shakespeare as study_lib


def _config(data_dir, tfds_dir, sizes=((1, 32), (2, 32), (1, 64)), steps=(10, 20, 40)):
  if not os.path.isdir(os.path.join(data_dir, "tinyshakespeare")):
    pytest.skip("no tiny Shakespeare")
  c = study_lib.get_config("quick")
  c.data.update(data_dir=data_dir, tfds_dir=tfds_dir, eval_batch_size=2048)
  c.train.update(progress_bar=False, log_every_steps=10)
  # Held out: 221k parameters, 4.5x the largest fitted (49k), at 2x the largest fitted budget.
  c.scaling.update(sizes=sizes, steps=steps, heldout=(2, 96), heldout_steps=80, bootstrap=10,
                   budgets=(1e10,))
  return c


@pytest.mark.parametrize("layers,width", [(1, 32), (3, 96), (6, 192)])
def test_non_embedding_parameters_of_the_recipe(layers, width):
  """12 L d^2 matrix weights (no biases, parameter-free norms) plus the learned mixing scalars:
  2 x0 weights per block, a value weight in every block but the first, L // 2 skip weights."""
  r = study_lib.run_config(study_lib.get_config(), layers, width, 100)
  assert r.model.num_heads == width // 32 and r.optim.warmup_steps == 10
  assert r.train.checkpoint_every_steps % r.train.log_every_steps == 0 and "scaling" not in r
  expected = 12 * layers * width**2 + 2 * layers + (layers - 1) + layers // 2
  assert study_lib.non_embedding_params(r) == expected


def test_a_study_too_small_to_fit_is_refused_before_training(tmp_path):
  c = study_lib.get_config("quick")
  c.scaling.update(sizes=((1, 32), (2, 64)), steps=(50, 100))
  with pytest.raises(ConfigError, match=r"gives 4 runs.*at least 6 runs"):
    study_lib.study(c, str(tmp_path))
  # 8 runs, but two budgets leave beta free (any exponent through two points).
  c.scaling.update(sizes=((1, 32), (2, 32), (1, 64), (2, 64)), steps=(50, 100))
  with pytest.raises(ConfigError, match=r"8 runs over 4 sizes and 2 budgets.*3 or more budgets"):
    study_lib.study(c, str(tmp_path))
  assert not os.listdir(tmp_path)
  c.scaling.update(sizes=((1, 32), (2, 48), (3, 64)), steps=(50, 100, 200))
  with pytest.raises(ConfigError, match="multiple of 32"):
    study_lib.study(c, str(tmp_path))


def test_the_runner_seam_names_a_bad_function():
  with pytest.raises(ConfigError, match="runner='experiments.nope:study'"):
    registry.import_function("experiments.nope:study")
  assert registry.import_function("experiments.scaling_shakespeare:study") is study_lib.study
  assert main_lib  # the command line dispatches config.runner (aigc_jax/main.py)


@pytest.mark.parametrize("variant, n_ratio", [(None, 4.5), ("quick", 4.6)])
def test_the_held_out_run_lies_4x_beyond_the_fit_in_n_and_2x_in_d(variant, n_ratio):
  c = study_lib.get_config(variant)
  fitted = [study_lib._size(c, l, w, max(c.scaling.steps)) for l, w in c.scaling.sizes]
  n, d = study_lib._size(c, *c.scaling.heldout, c.scaling.heldout_steps)
  assert n / max(x for x, _ in fitted) == pytest.approx(n_ratio, abs=0.05)
  assert d / max(x for _, x in fitted) == 2.0 and len(set(c.scaling.heldout_seeds)) == 3


@pytest.mark.parametrize("update, match", [
    (dict(heldout=(2, 64)), r"2.00x the largest fitted N .*at least 4x in N"),
    (dict(heldout_steps=300), r"1.50x the largest fitted D"),
    (dict(heldout_seeds=(0,)), "2 or more distinct seeds"),
])
def test_a_held_out_run_near_the_fit_is_refused_before_training(tmp_path, update, match):
  c = study_lib.get_config("quick")
  c.scaling.update(sizes=((1, 32), (2, 32), (1, 64)), **update)
  with pytest.raises(ConfigError, match=match):
    study_lib.study(c, str(tmp_path))
  assert not os.listdir(tmp_path)


def test_no_prediction_once_a_held_out_run_exists(tmp_path):
  """A held-out run without prediction.json (deleted, or a crash before it was written) would
  let the 'prediction' be made after the result: refused before anything trains."""
  c = study_lib.get_config("quick")
  (tmp_path / "heldout" / "L5_W160_S400_seed0").mkdir(parents=True)
  with pytest.raises(ConfigError, match="is not a prediction.*Delete those run directories"):
    study_lib.study(c, str(tmp_path))
  assert sorted(os.listdir(tmp_path)) == ["heldout"]
  # A stored prediction for another held-out run or grid is refused too.
  (tmp_path / "prediction.json").write_text(json.dumps({"spec": {"layers": 8}}))
  with pytest.raises(ConfigError, match="holds a prediction for .* use a new workdir"):
    study_lib.study(c, str(tmp_path))


def test_study_fits_predicts_before_training_the_held_out_run_and_resumes(
    data_dir, tfds_dir, tmp_path):
  c = _config(data_dir, tfds_dir)
  s = study_lib.study(c, str(tmp_path))
  assert len(s["runs"]) == 9 and all(r["loss"] < 4.2 for r in s["runs"])  # log(65) = 4.17
  for r in s["runs"]:
    assert r["flops"] == 6 * r["N"] * r["D"] and r["D"] == r["steps"] * 16 * 64
    assert r["compiled_flops"] > r["flops"]  # attention, embeddings, head and the optimiser
  # More steps lower the loss at every size: the data the fit reads is sane.
  by = {(r["layers"], r["width"], r["steps"]): r["loss"] for r in s["runs"]}
  assert all(by[(l, w, 40)] < by[(l, w, 20)] < by[(l, w, 10)] for l, w in c.scaling.sizes)
  held = s["heldout"]
  assert held["N_ratio"] >= 4 and held["D_ratio"] >= 2
  prediction = json.loads((tmp_path / "prediction.json").read_text())
  seeds = [tmp_path / "heldout" / f"L2_W96_S80_seed{k}" for k in (0, 1, 2)]
  for run_dir in seeds:  # predicted, then trained
    assert os.path.getmtime(tmp_path / "prediction.json") <= os.path.getmtime(
        run_dir / "config.json")
  assert [json.loads((d / "config.json").read_text())["seed"] for d in seeds] == [0, 1, 2]
  # Every prediction and the measured loss recomputed from their own sources: the stored fit
  # at the held-out (N, D), the nearest fitted run's own summary, and the seeds' summaries.
  f = prediction["fit"]
  assert held["predicted_loss"] == pytest.approx(
      f["E"] + f["A"] / held["N"] ** f["alpha"] + f["B"] / held["D"] ** f["beta"], rel=1e-9)
  assert f == {k: s["fit"][k] for k in f}
  near = prediction["naive"]["nearest_run"]
  assert near["run"] == "L1_W64_S40"  # the largest fitted N at the largest fitted D
  assert near["predicted_loss"] == json.loads(
      (tmp_path / "runs" / "L1_W64_S40" / "summary.json").read_text())["test_loss"]
  losses = [json.loads((d / "summary.json").read_text())["test_loss"] for d in seeds]
  assert held["seed_losses"] == losses and len(set(losses)) == 3
  assert held["actual_loss"] == pytest.approx(sum(losses) / 3, rel=1e-12)
  for name, p in held["predictors"].items():
    assert p["error"] == pytest.approx(p["predicted_loss"] - held["actual_loss"]), name
  assert held["predictors"]["n_only"]["predicted_loss"] == prediction["naive"]["n_only"][
      "predicted_loss"]
  exponent = s["compute_optimal_exponent"]
  assert exponent["a"] == pytest.approx(s["fit"]["beta"] / (s["fit"]["alpha"] + s["fit"]["beta"]))
  assert {v["a"] for v in exponent["chinchilla"].values()} == {0.46, 0.50}
  for name in ("frontier", "loss_vs_params", "isoloss"):
    assert (tmp_path / "plots" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
  table = (tmp_path / "table.md").read_text()
  assert "| L(N, D) fit |" in table and "nearest fitted run (L1_W64_S40)" in table
  saved = json.loads((tmp_path / "summary.json").read_text())
  assert saved["fit"]["alpha"] == pytest.approx(s["fit"]["alpha"])
  # Rerunning the command reads the finished runs and keeps the first prediction.
  again = study_lib.study(c, str(tmp_path))
  assert again["heldout"]["made_at"] == held["made_at"]
  assert again["heldout"]["predicted_loss"] == held["predicted_loss"]
  assert [r["loss"] for r in again["runs"]] == [r["loss"] for r in s["runs"]]
  assert again["heldout"]["seed_losses"] == losses
