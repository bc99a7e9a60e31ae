"""Train-step time of the video predictors (experiments/video_mnist.py) at the experiment's batch.

  python -m benchmarks.video_predictors [--batch=16 --repeats=5]

Prints, per model, the median seconds of a jitted forward + backward pass over 10 given and 10
predicted 64x64 frames, and the steps a 10-minute budget buys. The ConvLSTM is also timed with
its time loop as `nn.scan` (the same cells), which XLA:CPU runs far slower than the unrolled loop
the model uses.
"""

import argparse
import time

import einops
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from aigc_jax import models
from experiments import video_mnist


class _ScannedConvLSTM(nn.Module):
  """models/convlstm.py's computation with nn.scan over time (teacher-forced: the timing only)."""
  hidden: tuple
  kernel_size: int
  patch: int

  @nn.compact
  def __call__(self, given, num_future: int):
    p = self.patch
    x = einops.rearrange(given, "b t (h p) (w q) c -> t b h w (p q c)", p=p, q=p)
    x = jnp.concatenate([x, jnp.repeat(x[-1:], num_future - 1, 0)])

    class Step(nn.Module):
      hidden: tuple
      k: int

      @nn.compact
      def __call__(self, states, frame):
        h, new = frame, []
        for f, s in zip(self.hidden, states):
          s, h = nn.ConvLSTMCell(f, (self.k, self.k))(s, h)
          new.append(s)
        return tuple(new), nn.Conv(frame.shape[-1], (1, 1))(h)

    states = tuple((jnp.zeros(x.shape[1:4] + (f,)),) * 2 for f in self.hidden)
    scan = nn.scan(Step, variable_broadcast="params", split_rngs={"params": False})
    _, preds = scan(self.hidden, self.kernel_size)(states, x)
    return einops.rearrange(preds[-num_future:], "t b h w (p q c) -> b t (h p) (w q) c",
                            p=p, q=p, c=given.shape[-1])


def time_step(model, batch: int, repeats: int) -> float:
  given = jax.random.uniform(jax.random.PRNGKey(0), (batch, 10, 64, 64, 1))
  future = jax.random.uniform(jax.random.PRNGKey(1), (batch, 10, 64, 64, 1))
  params = model.init(jax.random.PRNGKey(0), given, 10)

  @jax.jit
  def step(p, x, y):
    return jax.value_and_grad(lambda p: jnp.mean((model.apply(p, x, 10) - y)**2))(p)

  jax.block_until_ready(step(params, given, future))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(step(params, given, future))
    times.append(time.perf_counter() - start)
  return sorted(times)[len(times) // 2]


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--batch", type=int, default=16)
  ap.add_argument("--repeats", type=int, default=5)
  a = ap.parse_args()
  print(f"jax {jax.__version__}, {jax.devices()[0].device_kind}, batch {a.batch}")
  rows = [(name, models.get_model(ml_collections.ConfigDict(video_mnist.model(name))))
          for name in ("simvp", "convlstm")]
  m = video_mnist.model("convlstm")
  rows.append(("convlstm (nn.scan)", _ScannedConvLSTM(tuple(m["hidden"]), m["kernel_size"],
                                                      m["patch"])))
  for name, model in rows:
    s = time_step(model, a.batch, a.repeats)
    print(f"{name:20s} {s:7.3f} s/step  {600 / s:6.0f} steps in 10 min")


if __name__ == "__main__":
  main()
