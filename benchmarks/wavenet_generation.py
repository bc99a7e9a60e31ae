"""WaveNet generation speed: samples per second with the per-layer queues (Fast WaveNet) against
the naive pass over the receptive field, at batch 1 and 16, against real time.

  python -m benchmarks.wavenet_generation [--variant=quick] [--seconds=1.0] [--repeats=3]

Weights are random (speed does not depend on them); the model is wavenet_speech's (voice
conditioned). Each figure is the median of `repeats` timed calls after a compiling one; a
sample's rate counts every sample of the batch (batch x length / time). The naive path is timed
on `naive_seconds` of audio, as its cost per sample does not change with the length once past
the receptive field.
"""

import statistics
import time

import jax
import jax.numpy as jnp
from absl import app, flags

from aigc_jax import models
from aigc_jax.samplers import audio as audio_sampler
from experiments import wavenet_speech

flags.DEFINE_string("variant", "quick", "wavenet_speech variant whose model is timed")
flags.DEFINE_float("seconds", 1.0, "audio generated per call by the cached sampler")
flags.DEFINE_float("naive_seconds", 0.1, "audio generated per call by the naive sampler")
flags.DEFINE_integer("repeats", 3, "timed calls per figure (the median is printed)")
flags.DEFINE_string("batches", "1,16", "batch sizes")
FLAGS = flags.FLAGS


def rate(model, params, batch: int, n: int, use_cache: bool, repeats: int) -> float:
  voice = jnp.zeros((batch,), jnp.int32)

  def call():
    return jax.block_until_ready(audio_sampler.generate(
        model, params, jax.random.PRNGKey(0), num_samples=n, batch=batch, voice=voice,
        use_cache=use_cache))

  call()  # compiles
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    call()
    times.append(time.perf_counter() - t)
  return batch * n / statistics.median(times)


def main(_):
  c = wavenet_speech.get_config(FLAGS.variant)
  rate_hz = 8000
  model = models.get_model(c.model, num_voices=5)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 64), jnp.int32),
                      voice=jnp.zeros((1,), jnp.int32))["params"]
  print(f"wavenet_speech:{FLAGS.variant}: {len(model.dilations)} layers, receptive field "
        f"{c.data.audio.context} samples, {jax.devices()[0].device_kind}")
  for b in map(int, FLAGS.batches.split(",")):
    cached = rate(model, params, b, int(FLAGS.seconds * rate_hz), True, FLAGS.repeats)
    naive = rate(model, params, b, int(FLAGS.naive_seconds * rate_hz), False, FLAGS.repeats)
    print(f"batch {b:3d}: cached {cached:9.0f} samples/s ({cached / rate_hz:5.2f}x real time), "
          f"naive {naive:8.1f} samples/s; cached / naive {cached / naive:7.1f}x", flush=True)


if __name__ == "__main__":
  app.run(main)
