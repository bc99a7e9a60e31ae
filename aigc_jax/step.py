"""The train state and the single jitted, sharded train step built from a task."""

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from aigc_jax import losses, optim
from aigc_jax.tasks import Task


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  model_state: Any  # non-trainable collections (batch statistics ...)
  opt_state: Any
  rng: jax.Array  # base key; each step folds in its step number, so resume replays it exactly


def create_state(task: Task, tx: optax.GradientTransformation, rng, batch_spec) -> TrainState:
  """A fresh state. Params stay boxed (logical axis names), so the optimiser state is too."""
  init_rng, state_rng = jax.random.split(rng)
  variables = dict(task.init(init_rng, batch_spec))
  params = variables.pop("params")
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=variables,
                    opt_state=tx.init(params), rng=state_rng)


def make_train_step(task: Task, tx: optax.GradientTransformation, state_shardings,
                    batch_sharding):
  """Returns jit(train_step)(state, batch) -> (state, metrics) with the state donated."""

  def train_step(state: TrainState, batch):
    rng = jax.random.fold_in(state.rng, state.step)

    def loss_fn(params):
      return task.loss(params, state.model_state, batch, rng)

    (loss, (metrics, model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = dict(metrics, loss=loss, grad_norm=losses.l2_norm(grads),
                   param_norm=losses.l2_norm(params), update_norm=losses.l2_norm(updates),
                   lr=optim.learning_rate(opt_state))
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              model_state=model_state or state.model_state)
    return new_state, metrics

  return jax.jit(train_step, in_shardings=(state_shardings, batch_sharding),
                 out_shardings=(state_shardings, None), donate_argnums=0)


def make_eval_step(task: Task, state_shardings, batch_sharding):
  """jit(eval_step)(state, batch) -> per-batch sums from the task's eval_step."""

  def eval_step(state: TrainState, batch):
    return task.eval_step({"params": state.params, **state.model_state}, batch)

  return jax.jit(eval_step, in_shardings=(state_shardings, batch_sharding))


def unbox(tree):
  return nn.meta.unbox(tree)
