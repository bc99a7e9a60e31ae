"""Parameter trees by path ("encoder/Dense_0/kernel"), and regex selections over those paths.

Freezing, pruning, Muon's matrix choice, quantisation and transfer all name parameters this way.
"""

import re

import flax.linen as nn
import jax

from aigc_jax.errors import ConfigError


def paths(tree) -> list[str]:
  """"a/b/c"-style paths of a tree's leaves, in leaf order."""
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return ["/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
          for path, _ in flat]


def listed(names: list[str], most: int = 12) -> str:
  """The first `most` paths, for an error message."""
  return ", ".join(names[:most]) + (" ..." if len(names) > most else "")


def select(regex: str, tree, setting: str, leaf_ok=lambda leaf: True, what: str = "parameter"):
  """A bool per leaf of `tree`: does `regex` match (re.search) its path, and `leaf_ok(leaf)`?
  `setting` names the config key in errors: a bad regex, or one that selects nothing."""
  try:
    pattern = re.compile(regex)
  except re.error as e:
    raise ConfigError(f"{setting}={regex!r} is not a regular expression: {e}.") from None
  names = paths(tree)
  hits = [bool(pattern.search(p)) and leaf_ok(x) for p, x in zip(names, jax.tree.leaves(tree))]
  if not any(hits):
    raise ConfigError(f"{setting}={regex!r} matches no {what}. Parameter paths: "
                      f"{listed(names)}.")
  return jax.tree.unflatten(jax.tree.structure(tree), hits)


def replace(params, subtrees: dict):
  """`params` (possibly boxed with logical names) with the {path: subtree} of `subtrees`
  swapped in, cast to the new parameters' dtypes; traceable."""
  def put(node, parts, value):
    if not parts:
      return jax.tree.map(
          lambda p, v: p.replace_boxed(v.astype(p.value.dtype)) if isinstance(
              p, nn.LogicallyPartitioned) else v.astype(p.dtype),
          node, value, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
    return {**node, parts[0]: put(node[parts[0]], parts[1:], value)}

  for path, value in subtrees.items():
    params = put(params, [p for p in path.split("/") if p], value)
  return params
