"""Initialising a run from another run's checkpoint (`config.init`) and freezing parameters
(`config.freeze`): the transfer option.

  config.init.workdir = "workdirs/ae"       # a trained workdir
  config.init.checkpoint = "latest"         # latest | best (the best-validation checkpoint)
  config.init.map = "encoder<-encoder"      # new subtree <- old subtree, comma-separated;
                                            # "encoder" means "encoder<-encoder", "" the whole tree

Subtrees are "/"-separated parameter paths ("encoder/Dense_0"). Everything is checked before
compiling: the workdir and its checkpoint exist, both paths exist, and the two subtrees have the
same parameters with the same shapes. The loaded arrays enter the jitted init as arguments (see
step.sharded_state), so they are never baked into a compiled program as constants.

`config.freeze` is a regex over parameter paths ("encoder/Dense_0/kernel"): matching parameters
get no update and no optimiser state, and keep their exact bits.
"""

import jax
import numpy as np

from aigc_jax import checkpoint, trees
from aigc_jax.options import Active
from aigc_jax.errors import ConfigError


DEFAULTS = {
    # Start from another run's parameters: map "new<-old" subtrees (see above).
    # "latest" by default: "best" is chosen on a validation metric and is there only when the
    # run kept one (train.best_metric), so it must be asked for.
    "init": {"workdir": "", "checkpoint": "latest", "map": ""},
    # A regex over parameter paths ("encoder/Dense_0/kernel"): matching ones are not trained.
    "freeze": "",
}


def check(config) -> None:
  if config.init.workdir:
    parse_map(config.init.map)
    if config.init.checkpoint not in checkpoint.WHICH:
      raise ConfigError(f"init.checkpoint={config.init.checkpoint!r}; valid: "
                        f"{', '.join(checkpoint.WHICH)}.")


def setup(config, run):
  del run
  if not (config.init.workdir or config.freeze):
    return None
  return Active(
      name="init",
      frozen=(lambda abstract: trees.select(config.freeze, abstract, "freeze"))
      if config.freeze else None,
      loaded=(lambda abstract: load_init(config.init, abstract)) if config.init.workdir else None)


def parse_map(spec: str) -> list[tuple[str, str]]:
  """"a<-b, c" -> [("a", "b"), ("c", "c")]; "" -> [("", "")] (the whole tree)."""
  pairs = []
  for part in filter(None, (p.strip() for p in spec.split(","))):
    new, sep, old = part.partition("<-")
    new, old = new.strip().strip("/"), (old if sep else new).strip().strip("/")
    pairs.append((new, old))
  return pairs or [("", "")]


def _subtree(tree, path: str, what: str):
  node = tree
  for i, part in enumerate(filter(None, path.split("/"))):
    if not isinstance(node, dict) or part not in node:
      here = "/".join(path.split("/")[:i]) or "the root"
      keys = sorted(node) if isinstance(node, dict) else []
      raise ConfigError(f"init.map: {what} parameters have no {path!r} ({here} has "
                        f"{keys or 'no sub-trees'}).")
    node = node[part]
  return node


def _shapes(tree) -> dict[str, tuple]:
  return dict(zip(trees.paths(tree), (tuple(np.shape(v)) for v in jax.tree.leaves(tree))))


def load_init(init_config, abstract_params) -> dict:
  """{new path: host arrays of the old subtree} for `config.init`, checked against the new
  model's (unboxed) abstract parameters; {} when init.workdir is empty."""
  if not init_config.workdir:
    return {}
  trained = checkpoint.load_workdir(init_config.workdir, init_config.checkpoint)
  old_params = trained.variables["params"]
  loaded = {}
  for new, old in parse_map(init_config.map):
    new_tree = _subtree(abstract_params, new, "the new model's")
    old_tree = _subtree(old_params, old, f"{init_config.workdir}'s")
    a, b = _shapes(new_tree), _shapes(old_tree)
    if set(a) != set(b):
      missing, extra = sorted(set(a) - set(b)), sorted(set(b) - set(a))
      raise ConfigError(
          f"init.map {new or '/'}<-{old or '/'}: the subtrees hold different parameters "
          f"(only new: {missing[:6]}, only old: {extra[:6]}); map matching subtrees.")
    for leaf in sorted(a):
      if a[leaf] != b[leaf]:
        raise ConfigError(
            f"init.map: shape mismatch: new {'/'.join(filter(None, (new, leaf)))} is "
            f"{a[leaf]} but {init_config.workdir}'s {'/'.join(filter(None, (old, leaf)))} is "
            f"{b[leaf]}; make the two models' sizes agree or map another subtree.")
    loaded[new] = jax.tree.map(np.asarray, old_tree)
  print(f"Initialising {', '.join(n or 'all parameters' for n in loaded)} from {trained.path}",
        flush=True)
  return loaded
