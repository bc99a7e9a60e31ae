"""WaveNet: causal, its receptive field exactly as computed, and cached generation equal to the
naive full recomputation sample for sample."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aigc_jax import audio
from aigc_jax.errors import ConfigError
from aigc_jax.models import wavenet
from aigc_jax.samplers import audio as audio_sampler


def _model(cond: str = ""):
  kw = dict(vocab_size=32, channels=8, skip_channels=16, layers_per_stack=3, stacks=2)
  if "voice" in cond:
    kw["num_voices"] = 3
  if "mel" in cond:
    kw.update(mel_channels=5, mel_hop=4)
  return wavenet.Model(**kw)


def _inputs(model, B, T, seed=0):
  rng = np.random.default_rng(seed)
  kw = {}
  if model.num_voices:
    kw["voice"] = jnp.asarray(rng.integers(0, model.num_voices, B), jnp.int32)
  if model.mel_channels:
    kw["mel"] = jnp.asarray(rng.normal(size=(B, T // model.mel_hop + 1, model.mel_channels)),
                            jnp.float32)
  return jnp.asarray(rng.integers(0, model.vocab_size, (B, T)), jnp.int32), kw


def _params(model, codes, kw, seed=0):
  """Initial parameters moved off their init: the conditioning maps start at zero (a no-op)."""
  params = model.init(jax.random.PRNGKey(seed), codes, **kw)["params"]
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
  return jax.tree.unflatten(tree, [p + 0.2 * jax.random.normal(k, p.shape)
                                   for p, k in zip(leaves, keys)])


def _perturbed_logits(model, params, codes, kw, t):
  """Logits of codes, and of codes with the input at position t changed."""
  f = jax.jit(lambda p, c, kw: model.apply({"params": p}, c, **kw))
  other = codes.at[:, t].set((codes[:, t] + 7) % model.vocab_size)
  return np.asarray(f(params, codes, kw)), np.asarray(f(params, other, kw))


def test_outputs_read_exactly_the_receptive_field():
  model = _model()
  R = wavenet.receptive_field(model)
  assert R == 1 + 2 * (1 + 2 + 4) == 15
  codes, kw = _inputs(model, 2, 60)
  params = _params(model, codes, kw)
  t = 30
  a, b = _perturbed_logits(model, params, codes, kw, t)
  changed = np.abs(a - b).max(axis=(0, 2)) > 0
  # Position p reads inputs p - R + 1 .. p: a change at t reaches t .. t + R - 1, nothing else.
  np.testing.assert_array_equal(np.flatnonzero(changed), np.arange(t, t + R))


@pytest.mark.parametrize("cond,prime", [("", 0), ("voice", 15), ("voice,mel", 6)])
def test_cached_generation_equals_naive_recomputation(cond, prime):
  model = _model(cond)
  B, N = 3, 40  # N > receptive field (15): the naive path's window slides
  codes, kw = _inputs(model, B, prime + N)
  # Untrained logits are near uniform; sharpen them so samples depend on every logit.
  params = jax.tree.map(lambda p: p * 3.0, _params(model, codes, kw, seed=1))
  out = {}
  for cache in (True, False):
    out[cache] = np.asarray(audio_sampler.generate(
        model, params, jax.random.PRNGKey(7), num_samples=N, batch=B, bits=5,
        voice=kw.get("voice"), mel=kw.get("mel"), use_cache=cache, prime=prime))
  np.testing.assert_array_equal(out[True], out[False])
  assert len(np.unique(out[True])) > 5  # a real draw, not a constant
  # And both are what the full pass gives: its logits at every position, teacher-forced on
  # `prime` silent samples and the drawn codes, pick the same codes with the same keys.
  inputs = jnp.concatenate([jnp.full((B, prime + 1), audio.silence_code(5)),
                            out[True][:, :-1]], 1)
  logits = model.apply({"params": params}, inputs, **kw)[:, prime:]
  redrawn = np.stack([np.asarray(jax.random.categorical(
      jax.random.fold_in(jax.random.PRNGKey(7), t), logits[:, t])) for t in range(N)], 1)
  np.testing.assert_array_equal(redrawn, out[True])


def test_conditioned_model_without_its_condition_is_an_error():
  model = _model("voice")
  codes, _ = _inputs(model, 1, 8)
  with pytest.raises(ConfigError, match="voice-conditioned.*pass `voice`"):
    model.init(jax.random.PRNGKey(0), codes)


def test_voice_and_mel_change_the_output():
  model = _model("voice,mel")
  codes, kw = _inputs(model, 2, 32)
  init = model.init(jax.random.PRNGKey(0), codes, **kw)["params"]
  other_voice = dict(kw, voice=(kw["voice"] + 1) % 3)
  # At initialisation the conditioning is a no-op (zero maps), so nothing moves yet.
  np.testing.assert_array_equal(model.apply({"params": init}, codes, **kw),
                                model.apply({"params": init}, codes, **other_voice))
  params = _params(model, codes, kw)
  base = model.apply({"params": params}, codes, **kw)
  assert np.abs(model.apply({"params": params}, codes, **other_voice) - base).min() > 0
  # Mel frame f is centred on sample f * hop: frame 3 (hop 4) conditions samples 10 .. 13,
  # whose layers feed later positions; no earlier one moves.
  mel = kw["mel"].at[:, 3].add(1.0)
  diff = np.abs(model.apply({"params": params}, codes, **dict(kw, mel=mel)) - base).max((0, 2))
  assert np.flatnonzero(diff > 0)[0] == 10 and (diff[10:14] > 0).all()
