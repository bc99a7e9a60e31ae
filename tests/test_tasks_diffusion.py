"""The diffusion task: its likelihood bound against a closed form, training on MNIST through the
one loop (exact resume, EMA), guided sampling, and errors before compiling."""

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aigc_jax import config as config_lib
from aigc_jax import train
from aigc_jax.data import pipeline
from aigc_jax.errors import ConfigError
from aigc_jax.samplers import diffusion as lib
from aigc_jax.tasks import diffusion, get_task
from experiments import ddpm_mnist
from tests import helpers

STD = 0.3  # the oracle's data: N(0, STD^2) per pixel


class Model(nn.Module):
  """An oracle denoiser for Gaussian data N(0, STD^2): the exact E[eps | x_t] (or the exact
  velocity for flow). Used by dotted path ("tests.test_tasks_diffusion")."""
  image_size: int = 4
  channels: int = 1
  num_classes: int = 0
  process: str = "vp"
  schedule: str = "cosine"

  @nn.compact
  def __call__(self, x, t, labels=None, *, train: bool = False):
    a, s = lib.Process(self.process, self.schedule).alpha_sigma(t)
    a, s = lib.expand(a, x), lib.expand(s, x)
    x0 = a * STD**2 / (a**2 * STD**2 + s**2) * x
    eps = (x - a * x0) / s
    return eps - x0 if self.process == "flow" else eps


def _oracle_config(process="vp", schedule="cosine"):
  c = config_lib.get_config(task="diffusion")
  c.model = {"name": "tests.test_tasks_diffusion", "image_size": 4, "channels": 1,
             "process": process, "schedule": schedule}
  c.diffusion.update(process=process, schedule=schedule,
                     prediction="velocity" if process == "flow" else "eps")
  return c


@pytest.mark.parametrize("process,schedule", [("vp", "cosine"), ("vp", "linear"), ("flow", "")])
def test_the_bound_of_the_gaussian_denoiser_is_its_integral(process, schedule):
  """For N(0, STD^2) pixels and their exact posterior mean, E|x - x0_hat|^2 per pixel at log-SNR
  lam is the posterior variance, so the diffusion term is 1/2 int sigmoid(lam + log STD^2) dlam
  nats a pixel (quadrature here, over the process's own log-SNR range) and the prior's KL is in
  closed form. The 8-bit data's discrete entropy (7.30 bits) lies below: the Gaussian denoiser
  does not know the pixels are on levels, so the bound is loose by the log-SNR range beyond the
  level spacing."""
  from aigc_jax.tasks import diffusion as task_lib
  task = get_task(_oracle_config(process, schedule or "cosine"))
  rng = np.random.default_rng(0)
  levels = np.clip(np.round((rng.normal(0, STD, (4096, 4, 4, 1)) + 1) * 127.5), 0, 255)
  x = (levels / 127.5 - 1).astype(np.float32)
  batch = {"input": jnp.asarray(x), "mask": jnp.ones((4096,))}
  fn = jax.jit(task.eval_fns["bits_per_dim"])
  bpd = np.concatenate([np.asarray(fn({"params": {}}, batch, jax.random.PRNGKey(i)))
                        for i in range(4)])
  p = lib.Process(process, schedule or "cosine")
  t_min = task_lib.FLOW_T_MIN if process == "flow" else 0.0
  lam_hi = float(p.logsnr(t_min))
  lam_lo = max(float(p.logsnr(1.0)), -task_lib.LOGSNR_FLOOR)
  lam = np.linspace(lam_lo, lam_hi, 200_001)
  diffusion = np.trapezoid(0.5 / (1 + np.exp(-(lam + np.log(STD**2)))), lam)
  a1, s1 = (float(v) for v in p.alpha_sigma(p.t_of_logsnr(lam_lo)))
  prior = 0.5 * (a1**2 * np.mean(x**2) + s1**2 - 1 - np.log(s1**2))
  want = (diffusion + prior) / np.log(2)  # the decoder adds < 0.001 bits at these noise floors
  # An image's draw spreads over the whole log-SNR range (std ~0.9 x the mean at 16 pixels);
  # stratified over 4 x 4,096 images, the mean lands within 0.15% of the integral.
  assert bpd.mean() == pytest.approx(want, rel=0.005)
  entropy = (0.5 * np.log(2 * np.pi * np.e * STD**2) - np.log(2 / 255)) / np.log(2)  # 7.30
  assert bpd.mean() > entropy


def _tiny(tfds_dir, data_dir, variant="quick", **train_kw):
  c = ddpm_mnist.get_config(variant)
  c.cpu_devices = 0
  c.model.update(width=8, multipliers=(1, 2), attention_at=(14,), heads=2, groups=4, patch=1)
  c.data.update(tfds_dir=tfds_dir, data_dir=data_dir, batch_size=16, eval_batch_size=200)
  c.sampler.steps = 2
  for name in ("scores", "test_scores"):  # no scorer here (cond variants keep "scores")
    if name in c.evals:
      del c.evals[name]
  c.evals.samples.num = 10
  c.evals.likelihood.repeats = 1
  c.train.update(dict(num_steps=8, log_every_steps=2, eval_every_steps=4,
                      checkpoint_every_steps=4, progress_bar=False, best_metric=""))
  c.train.update(train_kw)
  return c


def test_training_runs_and_resumes_exactly_with_the_average(data_dir, tfds_dir, tmp_path,
                                                           monkeypatch):
  c = _tiny(tfds_dir, data_dir)
  del c.evals["likelihood"]
  s1, s2 = helpers.crash_and_resume(c, tmp_path, monkeypatch, after_batches=5)
  assert s1["test_loss"] == s2["test_loss"]
  _, raw = helpers.final_state(str(tmp_path / "straight"))
  assert "ema" in raw["model_state"]  # sampling uses the averaged weights
  assert (tmp_path / "straight" / "samples" / "samples_step_000008.png").exists()
  from PIL import Image
  strip = Image.open(tmp_path / "straight" / "samples" / "denoising_step_000008.png")
  # 4 images x (x_t, x0_hat) rows of 28 px plus 2 px padding, 8 noise levels across.
  assert strip.size == (8 * 30 + 2, 8 * 30 + 2)


@pytest.mark.parametrize("process", ["vp", "flow"])
def test_the_denoise_strip_is_the_exact_posterior_mean_under_the_oracle(process):
  task = get_task(_oracle_config(process))
  x0 = np.random.default_rng(0).normal(0, STD, (3, 4, 4, 1)).astype(np.float32)
  for t in (0.1, 0.5, 0.9):
    xt, x0_hat = jax.jit(task.eval_fns["denoise"])({"params": {}}, x0, None, t,
                                                   jax.random.PRNGKey(0))
    a, s = lib.Process(process, "cosine").alpha_sigma(t)
    a, s = float(a), float(s)
    eps = (np.asarray(xt) - a * x0) / s
    assert np.std(eps) > 0.5  # x_t really is noised
    np.testing.assert_allclose(x0_hat, a * STD**2 / (a**2 * STD**2 + s**2) * np.asarray(xt),
                               rtol=1e-4, atol=1e-5)


def test_an_untrained_unet_bound_is_the_log_snr_range(data_dir, tfds_dir):
  """The U-Net's zero-initialised output predicts eps = 0, so x0_hat = x_t / alpha and the
  diffusion term is (lambda_max - lambda_min) |eps|^2 / 2 nats, D / 2 nats a pixel on average:
  30 / (2 ln 2) = 21.64 bits per dimension on the cosine schedule; prior and decoder add ~0."""
  c = _tiny(tfds_dir, data_dir)
  task = get_task(c)
  val = pipeline.load_split(c.data, "validation")
  batch = {"input": jnp.asarray(val.load(np.arange(1000))["input"]), "mask": jnp.ones((1000,))}
  variables = task.init(jax.random.PRNGKey(0),
                        {"input": jax.ShapeDtypeStruct((2, 28, 28, 1), jnp.float32)})
  fn = jax.jit(task.eval_fns["bits_per_dim"])
  # Drawn uniformly in log-SNR, e^lam |x - x_t / alpha|^2 = |eps|^2 whatever lam is drawn: an
  # image's bound is want x chi^2_784 / 784 (std 5%), so 1,000 images' mean is within 0.16% (1
  # std) for every key. Drawn uniformly in t (the earlier estimator), one key's mean was a few
  # percent off: lambda'(t) spikes near t = 0 and 1.
  want = 2 * lib.LOGSNR_LIMIT / (2 * np.log(2))
  for k in range(4):
    bpd = np.asarray(fn(variables, batch, jax.random.PRNGKey(k)))
    assert bpd.std() == pytest.approx(want * np.sqrt(2 / 784), rel=0.15)
    assert bpd.mean() == pytest.approx(want, rel=0.0064)  # 4 std


def test_guided_sampling_is_deterministic_and_uses_both_branches(data_dir, tfds_dir):
  c = _tiny(tfds_dir, data_dir, variant="cond_quick")
  task = get_task(c)
  spec = {"input": jax.ShapeDtypeStruct((2, 28, 28, 1), jnp.float32)}
  variables = task.init(jax.random.PRNGKey(0), spec)
  # Perturb the zero-initialised output layer so the label matters.
  variables = jax.tree.map(lambda p: p + 0.05 * jnp.cos(jnp.arange(p.size).reshape(p.shape)),
                           variables)
  labels = np.array([3, 7])
  draw = jax.jit(lambda v, k: task.eval_fns["sample"](v, k, 2, labels))
  a = np.asarray(draw(variables, jax.random.PRNGKey(1)))
  np.testing.assert_array_equal(a, np.asarray(draw(variables, jax.random.PRNGKey(1))))
  assert a.shape == (2, 28, 28, 1) and np.all(np.abs(a) <= 1.0)
  c.sampler.guidance = 1.0
  plain = get_task(c).eval_fns["sample"]
  b = np.asarray(jax.jit(lambda v, k: plain(v, k, 2, labels))(variables, jax.random.PRNGKey(1)))
  assert np.max(np.abs(a - b)) > 1e-3  # guidance 2 differs from the conditional model alone


@pytest.mark.parametrize("change,message", [
    ({"sampler.guidance": 2.0}, "needs a conditional model"),
    ({"sampler.steps": 0}, "at least 1 step"),
    ({"sampler.name": "plms"}, "sampler.name='plms'; valid: ddpm, ddim, euler, heun, dpm"),
    ({"diffusion.schedule": "sigmoid"}, "diffusion.schedule='sigmoid'; valid: linear, cosine"),
    ({"diffusion.process": "flow"}, "diffusion.prediction='eps' with process 'flow'"),
    ({"model.image_size": 30}, "not divisible by 2\\^1 = 2"),
    ({"model.image_size": 27}, "model.patch=2 must be >= 1 and divide model.image_size=27"),
    ({"diffusion.weighting": "min_snr", "diffusion.process": "flow",
      "diffusion.prediction": "velocity"}, "min_snr' needs process 'vp'"),
])
def test_bad_configs_fail_before_compiling(change, message):
  c = ddpm_mnist.get_config("quick")
  c.update_from_flattened_dict(change)
  with pytest.raises(ConfigError, match=message):
    get_task(c)


def test_a_likelihood_evaluator_needs_a_task_with_a_bound(data_dir, tfds_dir, tmp_path):
  c = helpers.tiny_config(tfds_dir)
  c.data.data_dir = data_dir
  config_lib.add_eval(c, "likelihood", "likelihood")
  with pytest.raises(ConfigError, match="needs the task's 'bits_per_dim' function"):
    train.run(c, str(tmp_path))
  assert not list((tmp_path / "checkpoints").glob("[0-9]*"))  # no step was trained


def test_conditional_guidance_needs_label_dropout():
  c = ddpm_mnist.get_config("cond_quick")
  c.diffusion.label_dropout = 0.0
  with pytest.raises(ConfigError, match="label_dropout=0 never trained"):
    diffusion.check(c)


@pytest.fixture(scope="module")
def classifier(data_dir, tfds_dir, tmp_path_factory):
  return helpers.train_classifier(data_dir, tfds_dir, str(tmp_path_factory.mktemp("classifier")))


def test_sampler_curves_rescore_the_runs_own_fid_and_resume(data_dir, tfds_dir, classifier,
                                                           tmp_path):
  """The curve tool's score for the run's own sampler equals the run's final FID (same noise,
  same scorer); other settings and the live weights score differently; a rerun skips what is
  done; the plot is written."""
  from aigc_jax.tools import sampler_curves
  c = _tiny(tfds_dir, data_dir, num_steps=4, eval_every_steps=4)
  del c.evals["likelihood"], c.evals["denoising"]
  config_lib.add_eval(c, "scores", "fid", split="validation", samples=96, batch_size=48,
                      classifier_workdir=classifier)
  c.sampler.update(name="ddim", steps=2)
  s = train.run(c, str(tmp_path))
  settings = [{"name": "ddim", "steps": 2, "guidance": 1.0, "ema": True},
              {"name": "ddim", "steps": 2, "guidance": 1.0, "ema": False},
              {"name": "euler", "steps": 3, "guidance": 1.0, "ema": True}]
  out = str(tmp_path / "curves" / "c.jsonl")
  r = sampler_curves.score(str(tmp_path), settings, "validation", 96, 48, out)
  assert r[0]["fid"] == pytest.approx(s["scores_fid"], rel=1e-6)
  assert len({x["fid"] for x in r}) == 3
  again = sampler_curves.score(str(tmp_path), settings[:1], "validation", 96, 48, out)
  assert again == r  # nothing re-scored
  paths = sampler_curves.plot(r, str(tmp_path / "curves"), "validation")
  assert [os.path.basename(p) for p in paths] == ["fid_vs_steps.png"]


@pytest.mark.parametrize("name,size,channels", [("fashion_mnist", 28, 1), ("cifar10", 32, 3)])
def test_catalog_data_sets_train_unchanged(name, size, channels, tfds_dir, data_dir, tmp_path):
  """A catalog name goes through tfds (mocked here: no downloads) into the same recipe."""
  import tensorflow_datasets as tfds
  from PIL import Image
  c = _tiny(tfds_dir, data_dir, num_steps=2, eval_every_steps=2, checkpoint_every_steps=2)
  c.data.update(name=name, eval_batch_size=16)
  c.model.update(image_size=size, channels=channels)
  del c.evals["likelihood"]
  for ec in c.evals.values():
    ec.split = "test"
  with tfds.testing.mock_data(num_examples=32):
    s = train.run(c, str(tmp_path))
  assert np.isfinite(s["test_loss"])
  grid = np.asarray(Image.open(tmp_path / "samples" / "samples_step_000002.png"))
  assert grid.ndim == (2 if channels == 1 else 3)


def test_one_device_equals_the_8_device_mesh(data_dir, tfds_dir, tmp_path):
  c = _tiny(tfds_dir, data_dir, num_steps=6, eval_every_steps=6, checkpoint_every_steps=6,
            log_every_steps=1)
  del c.evals["likelihood"], c.evals["denoising"], c.evals["samples"]
  helpers.one_and_eight_devices(c, tmp_path, "test_loss")


def test_loss_falls_on_real_digits_alike_in_bfloat16_and_float32(data_dir, tfds_dir, tmp_path):
  losses = {}
  for dtype in ("float32", "bfloat16"):
    c = _tiny(tfds_dir, data_dir, num_steps=40, log_every_steps=10, eval_every_steps=40,
              checkpoint_every_steps=40)
    c.optim.update(lr=3e-3, warmup_steps=10)
    del c.evals["likelihood"], c.evals["denoising"], c.evals["samples"]  # losses only
    c.compute_dtype = dtype
    s = train.run(c, str(tmp_path / dtype))
    losses[dtype] = [m["loss"] for m in helpers.metrics(str(tmp_path / dtype))]
    assert np.isfinite(s["test_loss"])
  # Same data, noise and init: bfloat16's rounding moves the losses by well under 5%.
  np.testing.assert_allclose(losses["bfloat16"], losses["float32"], rtol=0.05)
  # Predicting eps = 0 scores 1 (unit-variance noise); a learning model drops well below it.
  f32 = losses["float32"]
  assert f32[0] > 0.6 and f32[-1] < 0.5 * f32[0], f32
  # The policy gives the U-Net the compute dtype: its convolutions run in bfloat16.
  c.compute_dtype = "bfloat16"
  from aigc_jax.options import precision
  model_config = precision.configure_task(c).model
  assert model_config.dtype == "bfloat16"
  m = ddpm_mnist.unet(True) | {"num_classes": 0}
  from aigc_jax.models import unet
  model = unet.Model(**{**m, "width": 8, "multipliers": (1, 2), "attention_at": (14,),
                        "heads": 2, "groups": 4, "dtype": jnp.bfloat16})
  x, t = jnp.zeros((2, 28, 28, 1)), jnp.zeros((2,))
  params = model.init(jax.random.PRNGKey(0), x, t)
  hlo = jax.jit(model.apply).lower(params, x, t).as_text()
  import re
  convs = re.findall(r"stablehlo\.convolution.*", hlo)
  assert convs and all(re.search(r"-> tensor<[0-9x]+xbf16>", line) for line in convs), convs


def test_the_patch_stem_folds_pixels_into_channels_and_back():
  from aigc_jax.models import unet
  m = unet.Model(width=8, multipliers=(1, 2), attention_at=(7,), heads=2, groups=4, patch=2)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 28, 28, 1))
  v = nn.unbox(m.init(jax.random.PRNGKey(1), x, jnp.zeros((2,))))
  assert v["params"]["conv_in"]["Conv_0"]["kernel"].shape[2] == 4  # 2x2 pixels as channels
  assert v["params"]["conv_out"]["kernel"].shape[3] == 4
  # Unfolding inverts folding: a conv_out that emits its 4 channels as the 2x2 block's pixels
  # in order puts each back where the stem took it from.
  bias = jnp.arange(4.0)
  v["params"]["conv_out"]["bias"] = bias
  out = m.apply(v, x, jnp.zeros((2,)))
  np.testing.assert_array_equal(out[0, :2, :2, 0], bias.reshape(2, 2))
  np.testing.assert_array_equal(out[1, 26:, 26:, 0], bias.reshape(2, 2))


def test_clipping_x0_changes_what_a_wild_model_draws(data_dir, tfds_dir):
  """A model whose eps is off at high noise makes x0 = (x - sigma eps) / alpha explode; clipping
  each step's x0 (sampler.clip_x0) changes the deterministic sampler's draw."""
  c = _tiny(tfds_dir, data_dir)
  c.sampler.update(name="ddim", steps=3)
  task = get_task(c)
  variables = task.init(jax.random.PRNGKey(0),
                        {"input": jax.ShapeDtypeStruct((2, 28, 28, 1), jnp.float32)})
  variables = jax.tree.map(lambda p: p + 0.05 * jnp.cos(jnp.arange(p.size).reshape(p.shape)),
                           variables)
  draw = lambda t: np.asarray(jax.jit(lambda v, k: t.eval_fns["sample"](v, k, 4))(  # noqa: E731
      variables, jax.random.PRNGKey(1)))
  clipped = draw(task)
  c.sampler.clip_x0 = False
  raw = draw(get_task(c))
  assert np.max(np.abs(clipped - raw)) > 1e-2
