"""Simulated federated averaging (McMahan et al. 2017) as an option of the one train step.

`config.fed.enabled`: the training split is dealt to `clients` clients of equal size, IID (a
seeded shuffle) or non-IID (`split="shards"`: sorted by label, cut into 2 x clients shards, two
shards a client, as in the paper). One train step is one round: a seeded `fraction` of the
clients is drawn, and each runs `local_epochs` epochs of SGD at `client_lr` over its own data in
batches of `local_batch` (0: all of it, one step an epoch; FedSGD is local_epochs=1,
local_batch=0). The clients of a round are one `jax.vmap` over a client axis of the batch, each a
`lax.scan` over its local steps, inside the one jitted step. Their weight changes are averaged
(equal data sizes, so equal weights) and handed to the server optimiser as a gradient (-mean
change: `optim.name="sgd"`, `lr=1` is plain FedAvg). DP-FedAvg (`dp_clip` > 0): each client's
change is clipped to that norm and Gaussian noise of `dp_noise x dp_clip` is added to their sum
(McMahan et al. 2018), accounted as `dp_accounting` does for DP-SGD with the client sampling
rate as q.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np

from aigc_jax import sharding
from aigc_jax.errors import ConfigError
from aigc_jax.options import Active, privacy

SPLITS = ("iid", "shards")
DEFAULTS = {
    # One step is one round of `fraction` of the `clients`, each running local_epochs of SGD at
    # client_lr in batches of local_batch (0: all its data); split "iid" or "shards" (two label
    # shards a client). dp_clip/dp_noise > 0: DP-FedAvg (client changes clipped, noise on their
    # sum), accounted with dp.delta and dp.accountant.
    "fed": {"enabled": False, "clients": 100, "fraction": 0.1, "local_epochs": 1,
            "local_batch": 10, "client_lr": 0.1, "split": "iid", "dp_clip": 0.0,
            "dp_noise": 0.0},
}


def enabled(c) -> bool:
  return c is not None and bool(c.get("enabled", False))


def per_round(c) -> int:
  return max(1, int(round(c.fraction * c.clients)))


def check(config) -> None:
  """Refuses settings a round cannot honour that need no data, before anything is read."""
  c = config.fed
  if not enabled(c):
    return
  if not 0.0 < c.fraction <= 1.0:
    raise ConfigError(f"fed.fraction={c.fraction} must be in (0, 1]: the share of clients in a "
                      "round.")
  if c.split not in SPLITS:
    raise ConfigError(f"fed.split={c.split!r}; valid: {', '.join(SPLITS)}.")
  if c.local_epochs < 1 or not c.client_lr > 0:
    raise ConfigError(f"fed.local_epochs={c.local_epochs} must be >= 1 and fed.client_lr="
                      f"{c.client_lr} > 0.")
  if c.dp_clip < 0 or c.dp_noise < 0 or (c.dp_noise > 0) != (c.dp_clip > 0):
    raise ConfigError(f"fed.dp_clip={c.dp_clip}, fed.dp_noise={c.dp_noise}: DP-FedAvg needs "
                      "both > 0 (or both 0 for none).")
  if privacy.enabled(config.get("dp")):
    raise ConfigError("fed.enabled and dp.enabled together: use fed.dp_clip and fed.dp_noise "
                      "(DP-FedAvg) for privacy at the client level.")
  if config.train.grad_accum_steps != 1:
    raise ConfigError("fed.enabled runs each client's local steps itself; leave "
                      "train.grad_accum_steps at 1.")


def _check_data(c, n_examples: int) -> None:
  if c.clients < 1 or c.clients > n_examples:
    raise ConfigError(f"fed.clients={c.clients} for {n_examples} training examples: each client "
                      f"needs at least one example; use 1 to {n_examples} clients.")
  n_k = n_examples // c.clients
  if c.split == "shards" and n_examples < 2 * c.clients:
    raise ConfigError(f"fed.split='shards' needs 2 examples a client at least ({2 * c.clients}); "
                      f"the split has {n_examples}.")
  if c.split == "shards":
    n_k = 2 * (n_examples // (2 * c.clients))
  b = c.local_batch or n_k
  if c.local_batch < 0 or n_k % b:
    raise ConfigError(f"fed.local_batch={c.local_batch} must divide each client's {n_k} "
                      "examples (0: all of them in one batch, FedSGD).")


def _no_batch_norm(abstract) -> None:
  if "batch_stats" in (abstract.model_state or {}):
    raise ConfigError("fed.enabled with a batch-norm model: its statistics would need their "
                      "own averaging; use a model without batch norm.")


def setup(config, run):
  """One step is one round: the round iterator replaces the training data, the clients' mean
  weight change the gradient."""
  c = config.fed
  if not enabled(c):
    return None
  if run.task.players:
    raise ConfigError("fed.enabled is for single-loss tasks, not multi-player ones (GAN).")
  if run.train_split is None:
    raise ConfigError("fed.enabled needs its training data (the clients' partition).")
  _check_data(c, len(run.train_split))
  sharding.check_batch_size(per_round(c), run.mesh, "the clients in a round (fed.fraction x "
                            "fed.clients)")
  it = RoundIterator(run.train_split, c, config.seed)
  fed = {k: (float(v) if isinstance(v, float) else v) for k, v in c.items()
         if k in ("local_epochs", "local_batch", "client_lr", "dp_clip", "dp_noise")}

  def gradient(task, state, batch, rng, n):
    del n
    grad_fn = jax.value_and_grad(
        lambda p, ms, mb, key: task.loss(p, ms, mb, key, state.step), has_aux=True)
    loss, grads, metrics = round_update(grad_fn, state.params, state.model_state, batch, rng,
                                        fed)
    return loss, metrics, state.model_state, grads

  accounting = {}
  if c.dp_clip:  # DP-FedAvg: each round samples per_round / clients of the clients
    accounting = privacy.accounting(config, per_round(c) / c.clients, float(c.dp_noise),
                                    float(c.dp_clip))
  return Active(
      name="federated",
      train_data=lambda spec: (it, per_round(c) * it.clients.shape[1], it.batch_spec(spec)),
      # The model sees one client's examples: no client axis.
      model_spec=lambda spec: {k: jax.ShapeDtypeStruct(v.shape[1:], v.dtype)
                               for k, v in spec.items()},
      gradient=gradient, check_state=_no_batch_norm, **accounting)


def partition(labels: np.ndarray, c, seed: int) -> np.ndarray:
  """[clients, n_k] example indices: IID, or two label-sorted shards a client."""
  n = len(labels)
  rng = np.random.default_rng([seed, 0xFED])
  if c.split == "iid":
    n_k = n // c.clients
    return rng.permutation(n)[:n_k * c.clients].reshape(c.clients, n_k)
  size = n // (2 * c.clients)
  order = np.argsort(labels, kind="stable")[:size * 2 * c.clients]
  shards = order.reshape(2 * c.clients, size)
  pick = rng.permutation(2 * c.clients).reshape(c.clients, 2)
  return shards[pick].reshape(c.clients, 2 * size)


class RoundIterator:
  """Each round's clients' data, {key: [clients in the round, n_k, ...]}, the clients drawn
  with a key per round: `get_state()` / `set_state()` resume it (checkpointed with the state)."""

  def __init__(self, split, c, seed: int):
    self.data = split.load(np.arange(len(split)))
    if "label" not in self.data:
      raise ConfigError("fed.enabled needs labelled data (a 'label' feature) to deal to clients.")
    self.clients = partition(np.asarray(self.data["label"]), c, seed)
    self.c, self.seed, self.round = c, seed, 0

  def __iter__(self):
    return self

  def batch_spec(self, example_spec: dict) -> dict:
    """[clients a round, examples a client, ...] for each key of a batch spec."""
    shape = (per_round(self.c), self.clients.shape[1])
    return {k: jax.ShapeDtypeStruct(shape + v.shape[1:], v.dtype) for k, v in example_spec.items()}

  def __next__(self):
    rng = np.random.default_rng([self.seed, self.round])
    chosen = np.sort(rng.choice(self.c.clients, per_round(self.c), replace=False))
    idx = self.clients[chosen]
    self.round += 1
    return {k: v[idx.ravel()].reshape(idx.shape + v.shape[1:]) for k, v in self.data.items()}

  def get_state(self) -> dict:
    return {"round": self.round}

  def set_state(self, state) -> None:
    if isinstance(state, (bytes, str)):  # grain's checkpoint handler hands other iterators bytes
      state = json.loads(state)
    self.round = int(state["round"])

  def start_prefetch(self) -> None:  # called by grain's checkpoint handler after a restore
    pass


def round_update(grad_fn, params, model_state, batch, rng, fed: dict):
  """(mean client loss, -averaged change of the weights, metrics) of one round; `batch` has a
  leading client axis; grad_fn(params, model_state, mb, key) is value_and_grad with aux."""
  first = jax.tree.leaves(batch)[0]
  m, n = first.shape[0], first.shape[1]
  b = fed["local_batch"] or n
  per_epoch = n // b
  steps = fed["local_epochs"] * per_epoch

  def client(data, key):
    def local(p, i):
      perm = jax.random.permutation(jax.random.fold_in(key, i // per_epoch), n)
      idx = jax.lax.dynamic_slice_in_dim(perm, (i % per_epoch) * b, b)
      mb = jax.tree.map(lambda x: x[idx], data)
      (loss, _), g = grad_fn(p, model_state, mb, jax.random.fold_in(key, steps + i))
      return jax.tree.map(lambda w, gw: w - fed["client_lr"] * gw, p, g), loss

    final, losses = jax.lax.scan(local, params, jnp.arange(steps))
    return jax.tree.map(jnp.subtract, final, params), jnp.mean(losses)

  deltas, client_loss = jax.vmap(client)(batch, jax.random.split(rng, m))
  norms = jnp.sqrt(sum(jnp.sum(jnp.square(d).reshape(m, -1), axis=1)
                       for d in jax.tree.leaves(deltas)))
  metrics = {"client_update_norm": jnp.mean(norms)}
  if fed["dp_clip"] > 0:
    scale = jnp.minimum(1.0, fed["dp_clip"] / jnp.maximum(norms, 1e-12))
    summed = jax.tree.map(lambda d: jnp.einsum("m,m...->...", scale, d), deltas)
    mean = privacy.add_noise(summed, jax.random.fold_in(rng, privacy.NOISE_STREAM), fed["dp_clip"],
                             fed["dp_noise"], m)
    metrics["clipped_fraction"] = jnp.mean((norms > fed["dp_clip"]).astype(jnp.float32))
  else:
    mean = jax.tree.map(lambda d: jnp.mean(d, axis=0), deltas)
  return jnp.mean(client_loss), jax.tree.map(jnp.negative, mean), metrics
