"""audio_lm: WaveNet on real speech through the one trainer: exact whole-utterance NLL, 1 vs 8
devices, exact resume, bfloat16, samples written, clear errors; the vocoder and voice scorers."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aigc_jax import audio, models, train
from aigc_jax.data import pipeline
from aigc_jax.errors import ConfigError
from aigc_jax.models import wavenet
from aigc_jax.tasks import get_task
from experiments import wavenet_speech
from tests import helpers


def _tiny(data_dir, tfds_dir, variant="quick", **train_kw):
  c = wavenet_speech.get_config(variant)
  c.data.update(data_dir=data_dir, tfds_dir=tfds_dir, batch_size=16, eval_batch_size=32)
  c.model.update(channels=8, skip_channels=16, layers_per_stack=4, stacks=1)
  R = wavenet.receptive_field(c.model)
  c.data.audio.update(window=R + 48, context=R, stride=256)
  c.cpu_devices = 0
  c.optim.update(lr=3e-3, warmup_steps=2)
  c.train.update(dict(num_steps=6, log_every_steps=2, eval_every_steps=6,
                      checkpoint_every_steps=2, progress_bar=False), **train_kw)
  c.evals.validation.split = "validation[:1%]"
  c.evals.test.split = "test[:1%]"
  c.evals.samples.update(split="test[:1%]", seconds=0.01, num=2)
  for scored in ("voices", "vocoder"):  # tested on their own below
    if scored in c.evals:
      del c.evals[scored]
  return c


def test_test_nll_is_every_sample_of_every_utterance_with_its_full_context(data_dir, tfds_dir,
                                                                           tmp_path):
  c = _tiny(data_dir, tfds_dir, "quick_mel")
  del c.evals["samples"]
  s = train.run(c, str(tmp_path))
  _, params = helpers.final_params(str(tmp_path))
  # Independently: each whole test utterance after R samples of silence in one full pass.
  task_model = models.get_model(c.model, vocab_size=256, num_voices=5, mel_channels=40,
                                mel_hop=c.audio_lm.hop)
  split = pipeline.load_split(c.data, "test[:1%]")
  R = c.data.audio.context
  nll, count, hist = 0.0, 0, np.zeros(256)
  for i in range(len(split.lengths)):
    x = jnp.asarray(np.pad(split.utterance(i), (R, 0)))[None]
    q = audio.mu_law_encode(x)
    inputs = jnp.concatenate([jnp.full((1, 1), 128), q[:, :-1]], 1)
    mel = (audio.log_mel(x, 8000, c.audio_lm.n_fft, c.audio_lm.hop, c.audio_lm.n_mels) + 5) / 5
    logits = task_model.apply({"params": params}, inputs, voice=jnp.asarray(
        split.labels["voice"][i:i + 1]), mel=mel)[0, R:]
    logp = jax.nn.log_softmax(logits.astype(jnp.float32))
    nll -= float(jnp.take_along_axis(logp, q[0, R:, None], 1).sum())
    count += logits.shape[0]
    hist += np.bincount(np.asarray(q[0, R:]), minlength=256)
  assert count == split.num_samples
  # The chunked evaluation computes each chunk's mel from the chunk alone: frames within
  # n_fft / 2 of a chunk's edges differ, so the mel-conditioned NLL agrees to a small tolerance.
  assert s["test_loss"] == pytest.approx(nll / count, rel=2e-3)
  p = hist[hist > 0] / count
  assert s["test_unigram_bits_per_sample"] == pytest.approx(-(p * np.log2(p)).sum(), rel=1e-6)
  assert s["test_bits_per_sample"] == pytest.approx(s["test_loss"] / np.log(2))


def test_one_device_equals_eight_samples_are_written_bfloat16_agrees(data_dir, tfds_dir,
                                                                     tmp_path):
  c = _tiny(data_dir, tfds_dir)
  eight = helpers.one_and_eight_devices(c, tmp_path, "test_loss")
  samples = sorted(os.listdir(os.path.join(eight, "samples")))
  assert samples == ["samples_step_000006.png", "samples_step_000006_0.wav",
                     "samples_step_000006_1.wav"]
  import soundfile
  x, rate = soundfile.read(os.path.join(eight, "samples", samples[1]))
  assert rate == 8000 and len(x) == 80

  # bfloat16 through the precision policy, on the trained weights: the same NLL to rounding.
  _, params = helpers.final_params(eight)
  test = pipeline.load_split(c.data, "test[:1%]")
  batch = dict(test.load(np.arange(len(test))), mask=np.ones(len(test), bool))
  helpers.bfloat16_agrees(c, params, batch, "loss", rel=1e-2)


def test_killed_run_resumes_exactly(data_dir, tfds_dir, tmp_path, monkeypatch):
  c = _tiny(data_dir, tfds_dir, "quick_uncond")
  del c.evals["samples"], c.evals["validation"]
  c.train.best_metric = ""
  s1, s2 = helpers.crash_and_resume(c, tmp_path, monkeypatch, after_batches=3)
  assert s1["test_loss"] == s2["test_loss"]


def test_bad_audio_configs_are_errors_before_compiling(data_dir, tfds_dir):
  c = _tiny(data_dir, tfds_dir)
  c.data.audio.context = 10
  with pytest.raises(ConfigError, match=r"receptive field is 16 samples but data.audio.context=10"):
    get_task(c)
  c = _tiny(data_dir, tfds_dir)
  c.audio_lm.voice_key = "speaker"
  with pytest.raises(ConfigError, match=r"no integer 'speaker' feature"):
    get_task(c)
  c = _tiny(data_dir, tfds_dir)
  c.audio_lm.condition = "voice,pitch"
  with pytest.raises(ConfigError, match=r"audio_lm.condition='voice,pitch'"):
    get_task(c)
  c = _tiny(data_dir, tfds_dir)
  c.data.audio.window = 0
  with pytest.raises(ConfigError, match=r"set data.audio.window"):
    get_task(c)


class _Ctx:
  """What an evaluator reads, around a task function of the test's choosing."""

  def __init__(self, config, split, workdir, **fns):
    self.config, self._split, self.workdir, self._fns = config, split, workdir, fns

  def fn(self, name, evaluator):
    del evaluator
    return self._fns[name]

  def split(self, name):
    del name
    return self._split


def test_vocoder_scores_an_exact_resynthesis_zero_and_griffin_lim_above_it(data_dir, tfds_dir,
                                                                           tmp_path):
  from aigc_jax import evaluators
  from aigc_jax.evaluators import vocoder
  c = _tiny(data_dir, tfds_dir, "quick_mel")
  split = pipeline.load_split(c.data, "test[:2%]")
  ec = evaluators.spec("vocoder", num=3, max_seconds=0.3, gl_iters=16)

  def oracle(variables, rng, *, num_samples, voice, audio_BT, batch, temperature):
    assert audio_BT.shape == (batch, num_samples) and voice.shape == (batch,)
    return audio_BT  # a perfect vocoder

  out = vocoder.make("vocoder", ec, _Ctx(c, split, str(tmp_path), sample_audio=oracle))(
      None, 0, None)
  assert out["lsd_db"] == 0.0 and out["mcd_db"] == 0.0
  assert out["gl_lsd_db"] > 1.0 and out["gl_mcd_db"] > 0.1  # phase lost, magnitude smeared
  files = os.listdir(tmp_path / "samples")
  assert "vocoder_step_000000.png" in files and "vocoder_step_000000_2_griffin_lim.wav" in files
  picked = vocoder.pick(split, 3, "voice")  # the voices in turn
  assert len(set(split.labels["voice"][picked])) == min(3, len(np.unique(split.labels["voice"])))


def test_speaker_scorer_and_voice_agreement(data_dir, tfds_dir, tmp_path):
  from aigc_jax import evaluators
  from aigc_jax.evaluators import voice_agreement
  from experiments import speaker_id
  c = speaker_id.get_config()
  c.data.update(data_dir=data_dir, tfds_dir=tfds_dir)
  c.data.audio.update(window=4000, stride=2000)
  c.cpu_devices = 0
  c.evals.validation.split, c.evals.test.split = "validation[:10%]", "test[:10%]"
  c.train.update(num_steps=300, eval_every_steps=300, checkpoint_every_steps=300,
                 progress_bar=False)
  s = train.run(c, str(tmp_path / "scorer"))
  assert s["test_accuracy"] > 0.5  # five voices: chance is 0.2

  w = _tiny(data_dir, tfds_dir)
  split = pipeline.load_split(w.data, "test[:10%]")
  ec = evaluators.spec("voice_agreement", per_voice=3, seconds=0.25,
                       classifier_workdir=str(tmp_path / "scorer"))
  n = int(0.25 * 8000)

  def replay(variables, rng, *, num_samples, voice, batch, temperature):
    """Real test clips of the voice asked for: agreement must equal the scorer's accuracy on
    exactly those clips."""
    assert num_samples == n and batch == len(voice)
    out = np.zeros((batch, n), np.float32)
    for row, v in enumerate(np.asarray(voice)):
      x = split.utterance(int(np.flatnonzero(split.labels["voice"] == v)[row % 3]))[:n]
      out[row, :len(x)] = x
    replay.clips = out
    return jnp.asarray(out)

  out = voice_agreement.make("voices", ec, _Ctx(w, split, str(tmp_path), sample_audio=replay))(
      None, 0, None)
  scorer = voice_agreement.SpeakerScorer(str(tmp_path / "scorer"))
  _, probs = scorer.score(replay.clips)
  assert out["agreement"] == pytest.approx(np.mean(probs.argmax(-1) == np.repeat(np.arange(5), 3)))
  assert 0.5 < out["real_accuracy"] <= 1.0 and out["frechet"] >= 0 and out["frechet_floor"] >= 0
