"""A text sample from a language model per evaluation, as DIR/samples/NAME_step_N.txt, to read
how training is going."""

import os

import jax

from aigc_jax import writers

DEFAULTS = {"max_new_tokens": 200, "temperature": 0.8, "top_k": 200}


def make(name, ec, ctx):
  sample_text = ctx.fn("sample_text", name)

  def run(variables, step, rng):
    del rng
    text = sample_text(variables, jax.random.PRNGKey(step), max_new_tokens=ec.max_new_tokens,
                       temperature=ec.temperature, top_k=ec.top_k)
    if jax.process_index() == 0:
      path = os.path.join(ctx.workdir, "samples", f"{name}_step_{step:06d}.txt")
      writers.atomic_write(path, text)
    return {}

  return run
