"""Initialising a run from another run's checkpoint: `config.init`.

  config.init.workdir = "workdirs/ae"       # a trained workdir
  config.init.checkpoint = "best"           # best (falls back to latest) | latest
  config.init.map = "encoder<-encoder"      # new subtree <- old subtree, comma-separated;
                                            # "encoder" means "encoder<-encoder", "" the whole tree

Subtrees are "/"-separated parameter paths ("encoder/Dense_0"). Everything is checked before
compiling: the workdir and its checkpoint exist, both paths exist, and the two subtrees have the
same parameters with the same shapes. The loaded arrays enter the jitted init as arguments (see
step.sharded_state), so they are never baked into a compiled program as constants.
"""

import flax.linen as nn
import jax
import numpy as np

from aigc_jax import checkpoint
from aigc_jax.errors import ConfigError


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


def param_paths(params) -> list[str]:
  """"encoder/Dense_0/kernel"-style paths of a params tree, in leaf order."""
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  return ["/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
          for path, _ in flat]


def _shapes(tree) -> dict[str, tuple]:
  return dict(zip(param_paths(tree), (tuple(np.shape(v)) for v in jax.tree.leaves(tree))))


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


def replace_subtrees(params, loaded: dict):
  """`params` (possibly boxed with logical names) with the subtrees in `loaded` swapped in,
  cast to the new parameters' dtypes; traceable."""
  def put(node, parts, value):
    if not parts:
      return jax.tree.map(
          lambda p, v: p.replace_boxed(v.astype(p.value.dtype)) if isinstance(
              p, nn.LogicallyPartitioned) else v.astype(p.dtype),
          node, value, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
    return {**node, parts[0]: put(node[parts[0]], parts[1:], value)}

  for path, value in loaded.items():
    params = put(params, [p for p in path.split("/") if p], value)
  return params
