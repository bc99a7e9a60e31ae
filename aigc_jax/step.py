"""The train state and the single jitted, sharded train step built from a task and the run's
active options (aigc_jax/options/), and `prepare`, which builds both alike for training and for
ahead-of-time compiles."""

import functools
import operator
from typing import Any, Callable, NamedTuple

import einops
import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from aigc_jax import losses, optim, options, sharding, trees
from aigc_jax.errors import ConfigError
from aigc_jax.tasks import Task


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  model_state: Any  # non-trainable collections (batch statistics ...)
  opt_state: Any
  rng: jax.Array  # base key; each step folds in its step number, so resume replays it exactly
  masks: Any = None  # an option's bool per weight (pruning: False = pruned); None: none


def make_tx(task: Task, optim_config, num_steps: int, frozen=None):
  """One optimiser, or {player: optimiser} for a multi-player task (each player's schedule
  counts its own updates: num_steps x repeats). `frozen` (a bool tree like params, see
  trees.select) gives frozen parameters no update and no optimiser state."""
  if not task.players:
    return optim.freeze(optim.make_optimizer(optim_config, num_steps), frozen)
  return {p.name: optim.freeze(optim.make_optimizer(p.optim or optim_config,
                                                    num_steps * p.repeats),
                               None if frozen is None else frozen[p.name])
          for p in task.players}


def _ema_source(task: Task, params):
  return params[task.ema_of] if task.ema_of else params


def create_state(task: Task, tx, rng, batch_spec, loaded=None, masks: bool = False) -> TrainState:
  """A fresh state. Params stay boxed (logical axis names), so the optimiser state is too.
  `loaded` ({path: array}, see options/init.py) replaces those parameter subtrees (the
  optimiser state and EMA start from the loaded values)."""
  init_rng, state_rng = jax.random.split(rng)
  variables = dict(task.init(init_rng, batch_spec))
  params = variables.pop("params")
  if loaded:
    params = trees.replace(params, loaded)
  if task.ema_decay > 0:
    variables["ema"] = _ema_source(task, params)
  if isinstance(tx, dict):
    opt_state = {name: t.init(params[name]) for name, t in tx.items()}
  else:
    opt_state = tx.init(params)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=variables,
                    opt_state=opt_state, rng=state_rng,
                    masks=jax.tree.map(lambda p: jnp.ones(p.shape, bool), params)
                    if masks else None)


def sharded_state(task: Task, tx, rng, batch_spec, mesh, masks: bool = False):
  """(abstract state with shardings, the shardings, init(loaded=None)): init creates the fresh
  state already sharded over `mesh`; the abstract state is what a checkpoint restores onto.
  Loaded parameters are arguments of the jitted init, never constants baked into it."""
  create = functools.partial(create_state, task, tx, masks=masks)
  boxed = jax.eval_shape(create, rng, batch_spec)
  shardings = sharding.tree_shardings(boxed, mesh)
  abstract = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                          unbox(boxed), shardings)

  jitted = jax.jit(lambda r, l: unbox(create(r, batch_spec, l)), out_shardings=shardings)

  def init(loaded=None):
    return jitted(rng, loaded or {})

  init.jitted = jitted
  return abstract, shardings, init


def micro_batches(batch, n: int):
  """[n * b, ...] -> [n, b, ...], micro-batch i = rows i::n. Each device's contiguous rows map
  to its own rows of every micro-batch, so the split needs no communication."""
  return jax.tree.map(lambda x: einops.rearrange(x, "(b n) ... -> n b ...", n=n), batch)


def _apply(params, updates, frozen):
  """params + updates; frozen parameters keep their exact bits (x + 0 would turn -0.0 into 0.0)."""
  new = optax.apply_updates(params, updates)
  if frozen is None:
    return new
  return jax.tree.map(lambda f, old, n: old if f else n, frozen, params, new)


def _player_update(p, tx, params, opt_state, model_state, batch, rng, step, frozen):
  """One optimiser step of player `p` on `batch`: (params, opt_state, model_state, metrics)."""

  def loss_fn(own):
    return p.loss({**params, p.name: own}, model_state, batch, rng, step)

  (loss, (metrics, new_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      params[p.name])
  updates, opt_state = tx.update(grads, opt_state, params[p.name])
  own = _apply(params[p.name], updates, None if frozen is None else frozen[p.name])
  metrics = {f"{p.name}_{k}": v for k, v in dict(
      metrics, loss=loss, grad_norm=losses.l2_norm(grads), update_norm=losses.l2_norm(updates),
      lr=optim.learning_rate(opt_state)).items()}
  return {**params, p.name: own}, opt_state, {**model_state, **new_state}, metrics


def _players_step(task: Task, txs: dict, state: TrainState, batch, rng, frozen):
  """Each player in turn, `repeats` times on its own micro-batches: a GAN's n_critic critic
  updates and one generator update in one compiled step. The repeats are unrolled: inside a
  lax.scan (a while loop) XLA:CPU ran the convolutions 16x slower (1.26 s against 78 ms for a
  DCGAN step), and n_critic is small."""
  n = max(p.repeats for p in task.players)
  micro = micro_batches(batch, n)
  params, opt_states, model_state, metrics = state.params, dict(state.opt_state), \
      state.model_state, {}
  for i, p in enumerate(task.players):
    history = []
    for k in range(p.repeats):
      mb = jax.tree.map(lambda x, k=k: x[k], micro)
      params, opt_states[p.name], model_state, m = _player_update(
          p, txs[p.name], params, opt_states[p.name], model_state, mb,
          jax.random.fold_in(jax.random.fold_in(rng, i), k), state.step, frozen)
      history.append(m)
    metrics.update({k: jnp.mean(jnp.stack([m[k] for m in history])) for k in history[0]})
  return params, opt_states, model_state, metrics


def check_players(task: Task, global_batch: int, data_parallel: int = 1) -> None:
  """A multi-player batch must split into max(repeats) equal micro-batches, each divisible over
  the data-parallel devices (checked before compiling)."""
  if not task.players:
    return
  n = max(p.repeats for p in task.players)
  if global_batch % (n * data_parallel):
    raise ConfigError(
        f"data.batch_size={global_batch} must be divisible by {n} micro-batches (one per critic "
        f"update) x {data_parallel} data-parallel devices = {n * data_parallel}; each update reads "
        f"batch_size / {n} examples. Use e.g. data.batch_size={n * data_parallel * 64}.")


def check_grad_accum(task: Task, global_batch: int, data_parallel: int, n: int) -> None:
  """Micro-batches must split every device's rows evenly (checked before compiling)."""
  if n < 1:
    raise ConfigError(f"train.grad_accum_steps={n}; use 1 (no accumulation) or more.")
  if n > 1 and task.players:
    raise ConfigError("train.grad_accum_steps > 1 is for single-loss tasks; a multi-player "
                      "task (GAN) splits its batch by its players' repeats instead.")
  if global_batch % (n * data_parallel):
    raise ConfigError(
        f"data.batch_size={global_batch} must be divisible by train.grad_accum_steps={n} x "
        f"{data_parallel} data-parallel devices = {n * data_parallel}; e.g. "
        f"data.batch_size={n * data_parallel * max(1, global_batch // (n * data_parallel))}.")


AUGMENT_STREAM = 0x5EED  # the batch hooks' key is fold_in(step key, this): the loss's is unchanged


NONFINITE = ("stop", "skip", "ignore")


def _accumulated_grads(task: Task, state: TrainState, batch, rng, n: int):
  """(loss, metrics, model state, grads) of the whole batch from n micro-batches in a scan: the
  activations of one micro-batch live at a time. Gradients and metrics are the micro-batches'
  means, so the update equals the whole batch's when the loss is a mean over equally weighted
  examples."""
  def loss_fn(params, model_state, mb, key):
    return task.loss(params, model_state, mb, key, state.step)

  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
  if n == 1:
    (loss, (metrics, model_state)), grads = grad_fn(state.params, state.model_state, batch, rng)
    return loss, metrics, {**state.model_state, **(model_state or {})}, grads

  def body(carry, xs):
    grads, model_state = carry
    i, mb = xs
    (loss, (metrics, new_state)), g = grad_fn(state.params, model_state, mb,
                                              jax.random.fold_in(rng, i))
    grads = jax.tree.map(lambda a, b: a + b / n, grads, g)
    return (grads, {**model_state, **(new_state or {})}), (loss, metrics)

  zeros = jax.tree.map(jnp.zeros_like, state.params)
  (grads, model_state), (loss, metrics) = jax.lax.scan(
      body, (zeros, state.model_state), (jnp.arange(n), micro_batches(batch, n)))
  return jnp.mean(loss), jax.tree.map(jnp.mean, metrics), model_state, grads


def _finite(metrics) -> jax.Array:
  """Every loss and gradient norm of the step is finite."""
  vals = [v for k, v in metrics.items() if k.endswith("loss") or k.endswith("grad_norm")]
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in vals]))


class Hooks(NamedTuple):
  """What the active options change in the step (options.Active has the same fields)."""
  batch: Callable | None = None  # (key, batch) -> batch, on the step's key
  gradient: Callable | None = None  # (task, state, batch, rng, n) -> (loss, metrics, state, grads)
  grads: Callable | None = None  # (state, grads) -> grads, before the optimiser
  params: Callable | None = None  # (state, params) -> params, after it


def hooks_of(active: list) -> Hooks:
  return Hooks(batch=options.combined(active, "batch"), gradient=options.first(active, "gradient"),
               grads=options.combined(active, "grads"), params=options.combined(active, "params"))


def make_train_step(task: Task, tx, state_shardings, batch_sharding, hooks: Hooks = Hooks(),
                    frozen=None, grad_accum_steps: int = 1, nonfinite: str = "stop"):
  """Returns jit(train_step)(state, batch) -> (state, metrics) with the state donated.
  `tx` is one optimiser, or {player: optimiser} for a multi-player task (see make_tx);
  `hooks` are the options' changes: `batch` transforms the batch on the device with the step's
  key (augmentation), so a resumed run replays it exactly; `gradient` replaces the gradient
  (DP-SGD, a federated round); `grads` and `params` transform the gradient and the updated
  parameters (pruning masks). `frozen` parameters keep their exact values.
  `grad_accum_steps` > 1 computes the gradient over that many micro-batches in a scan and
  applies the optimiser once. `nonfinite`: when a loss or gradient norm is NaN or infinite, the
  step leaves the state unchanged and reports `nonfinite_step` = 1 ("stop": the loop then stops;
  "skip": training goes on) or applies the update anyway ("ignore").
  Models' logical activation constraints apply on the batch sharding's mesh."""
  if nonfinite not in NONFINITE:
    raise ConfigError(f"train.nonfinite={nonfinite!r}; valid: {', '.join(NONFINITE)}.")

  def train_step(state: TrainState, batch):
    with sharding.activation_constraints(batch_sharding.mesh):
      new_state, metrics = _train_step(state, batch)
    if nonfinite == "ignore":
      return new_state, metrics
    ok = _finite(metrics)
    # A bad step keeps every bit of the old state (step counter aside), so the checkpoint the
    # loop writes next is still the last good one.
    kept = jax.tree.map(lambda new, old: jnp.where(ok, new, old), new_state,
                        state.replace(step=new_state.step))
    return kept, dict(metrics, nonfinite_step=1.0 - ok.astype(jnp.float32))

  def _train_step(state: TrainState, batch):
    rng = jax.random.fold_in(state.rng, state.step)
    if hooks.batch:
      batch = hooks.batch(jax.random.fold_in(rng, AUGMENT_STREAM), batch)
    if task.players:
      params, opt_state, model_state, metrics = _players_step(task, tx, state, batch, rng,
                                                              frozen)
    else:
      grads_of = hooks.gradient or _accumulated_grads
      loss, metrics, model_state, grads = grads_of(task, state, batch, rng, grad_accum_steps)
      if hooks.grads:
        grads = hooks.grads(state, grads)
      updates, opt_state = tx.update(grads, state.opt_state, state.params)
      params = _apply(state.params, updates, frozen)
      if hooks.params:
        params = hooks.params(state, params)
      metrics = dict(metrics, loss=loss, grad_norm=losses.l2_norm(grads),
                     update_norm=losses.l2_norm(updates), lr=optim.learning_rate(opt_state))
    if task.ema_decay > 0:
      # Warm-up (d_t = min(d, (1 + t) / (10 + t))): early on the average follows the weights
      # instead of remembering the random initialisation for 1 / (1 - d) steps.
      t = state.step.astype(jnp.float32)
      d = jnp.minimum(task.ema_decay, (1.0 + t) / (10.0 + t))
      mix = lambda e, p: d * e + (1.0 - d) * p
      source = _ema_source(task, params)
      if frozen is None:
        ema = jax.tree.map(mix, model_state["ema"], source)
      else:  # a frozen parameter's average is itself, bit for bit (d e + (1 - d) e rounds)
        ema = jax.tree.map(lambda f, e, p: e if f else mix(e, p), _ema_source(task, frozen),
                           model_state["ema"], source)
      model_state = dict(model_state, ema=ema)
    metrics = dict(metrics, param_norm=losses.l2_norm(params))
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              model_state=model_state)
    return new_state, metrics

  return jax.jit(train_step, in_shardings=(state_shardings, batch_sharding),
                 out_shardings=(state_shardings, None), donate_argnums=0)


class Parts(NamedTuple):
  """What training and ahead-of-time compiles (aigc_jax/tools/compile.py) build alike."""
  abstract_params: Any  # unboxed, without shardings: what an option's `loaded` fills
  frozen: Any
  tx: Any
  abstract: Any  # the state with shardings: what the step is lowered with, checkpoints restore onto
  shardings: Any
  init: Callable  # init(loaded=None) -> the fresh, sharded state
  batch_sharding: Any
  batch: dict  # the abstract global batch (before the options' batch hooks), sharded
  hooks: Hooks
  grad_accum_steps: int
  nonfinite: str

  def lower(self, task):
    """The one jitted step (state donated), lowered for the abstract state and batch."""
    return make_train_step(task, self.tx, self.shardings, self.batch_sharding, self.hooks,
                           self.frozen, self.grad_accum_steps, self.nonfinite).lower(
                               self.abstract, self.batch)


def prepare(config, task: Task, mesh, spec: dict, num_steps: int, active: list) -> Parts:
  """Optimiser, sharded state and abstract batch for global batches like `spec` under the
  `active` options; reads no data."""
  rng = jax.random.PRNGKey(config.seed)
  model_spec = spec
  for a in active:  # the model is built for the batch it sees (one client's, two views ...)
    if a.model_spec:
      model_spec = a.model_spec(model_spec)
  abstract_params = unbox(jax.eval_shape(task.init, rng, model_spec)["params"])
  frozen_fn, masks_fn = options.first(active, "frozen"), options.first(active, "masks")
  frozen = frozen_fn(abstract_params) if frozen_fn else None
  if task.fixed:
    fixed = trees.select(task.fixed, abstract_params, "the task's fixed parameters")
    frozen = fixed if frozen is None else jax.tree.map(operator.or_, frozen, fixed)
  if masks_fn:
    masks_fn(abstract_params)
  if config.optim.name == "muon" and not task.players:
    optim.check_muon(config.optim, abstract_params)
  tx = make_tx(task, config.optim, num_steps, frozen)
  abstract, state_sh, init_state = sharded_state(task, tx, rng, model_spec, mesh,
                                                 masks=masks_fn is not None)
  for a in active:
    if a.check_state:
      a.check_state(abstract)
  batch_sh = sharding.batch_sharding(mesh)
  batch = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=batch_sh) for k, v in spec.items()}
  check_grad_accum(task, config.data.batch_size, sharding.data_parallel_size(mesh),
                   config.train.grad_accum_steps)
  return Parts(abstract_params, frozen, tx, abstract, state_sh, init_state, batch_sh, batch,
               hooks_of(active), config.train.grad_accum_steps, config.train.nonfinite)


def unbox(tree):
  return nn.meta.unbox(tree)
