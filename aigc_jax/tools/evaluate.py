r"""Runs a trained workdir's evaluators again, on a checkpoint, with config changes: a new
measurement of an old run without training it again.

  python -m aigc_jax.tools.evaluate --workdir=DIR [--evals=retrieval,zero_shot] \
      [--checkpoint=best|latest] [--set=data.text_key=caption,negative --set=...]

`--set KEY=VALUE` overrides one config entry (dotted path, the value parsed as the entry's type)
before the evaluators are built, e.g. tokenising a data set's hard negatives so `retrieval`
reports how often an image prefers its caption to its negative. The results are printed and
written to DIR/evaluations/<checkpoint>_<step>.json (merged with earlier ones of that step).
"""

import json
import os
import sys

from absl import app, flags, logging
import jax

from aigc_jax import checkpoint, evaluators, sharding, tasks, writers
from aigc_jax import config as config_lib
from aigc_jax.errors import ConfigError

FLAGS = flags.FLAGS


def _node(config, parent: str):
  node = config
  for part in filter(None, parent.split(".")):
    node = node.get(part) if hasattr(node, "get") else None
  return node


def override(config, assignments: list[str]) -> None:
  """Applies ["a.b=value", ...] to config, each value parsed as the entry's type: an entry of
  the run's config, or of the task's current defaults (a run saved before the entry existed)."""
  defaults = config_lib.get_config(task=config.task)
  for item in assignments:
    key, sep, value = item.partition("=")
    parent, _, leaf = key.strip().rpartition(".")
    node, default = _node(config, parent), _node(defaults, parent)
    if node is not None and leaf not in node and default is not None and leaf in default:
      node[leaf] = default[leaf]
    if not sep or node is None or leaf not in node:
      raise ConfigError(f"--set {item!r}: write KEY=VALUE with KEY an existing config entry "
                        "(e.g. data.text_key=caption,negative).")
    old = node[leaf]
    if isinstance(old, bool):
      if value.lower() not in ("true", "false", "1", "0"):
        raise ConfigError(f"--set {item!r}: {key} is a bool (true or false).")
      new = value.lower() in ("true", "1")
    elif isinstance(old, (int, float)):
      try:
        new = type(old)(value)
      except ValueError:
        raise ConfigError(f"--set {item!r}: {key} is a {type(old).__name__}.") from None
    elif isinstance(old, (tuple, list)):
      new = tuple(type(old[0])(v) if old else v for v in value.split(",") if v)
    else:
      new = value
    node[leaf] = new


def evaluate(workdir: str, names: list[str], which: str = "latest",
             assignments: list[str] = ()) -> dict:
  trained = checkpoint.load_workdir(workdir, which)
  config = trained.config
  override(config, list(assignments))
  unknown = sorted(set(names) - set(config.evals))
  if unknown:
    raise ConfigError(f"--evals {unknown} are not evaluators of {workdir}; it has "
                      f"{', '.join(sorted(config.evals))}.")
  config.evals = {k: v for k, v in config.evals.items() if not names or k in names}
  evaluators.validate(config)
  task = tasks.get_task(config)
  mesh = sharding.make_mesh(config.mesh)
  ctx = evaluators.Context(config=config, task=task, mesh=mesh, workdir=workdir,
                           variables_sharding=None, splits={})
  variables = jax.device_put(dict(trained.variables), jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec()))
  out = {}
  for ev in evaluators.build(config, ctx):
    result = ev.run(variables, trained.step, evaluators.rng_for(config.seed, ev.name, trained.step))
    out.update({f"{ev.name}_{k}": v for k, v in (result or {}).items()})
  path = os.path.join(workdir, "evaluations", f"{which}_{trained.step}.json")
  if os.path.exists(path):
    out = {**json.load(open(path)), **out}
  writers.atomic_write(path, json.dumps(out, indent=1, sort_keys=True).encode())
  return out


def main(argv=None):
  flags.DEFINE_string("workdir", None, "A trained workdir.", required=True)
  flags.DEFINE_list("evals", [], "Its evaluators to run (default: all).")
  flags.DEFINE_enum("checkpoint", "latest", checkpoint.WHICH, "Which checkpoint.")
  flags.DEFINE_multi_string("set", [], "KEY=VALUE config overrides, applied first.")

  def run(_):
    if not FLAGS["verbosity"].present:
      logging.set_verbosity(logging.WARNING)
    try:
      out = evaluate(FLAGS.workdir, FLAGS.evals, FLAGS.checkpoint, FLAGS.set)
    except ConfigError as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)
    print(json.dumps(out, indent=1, sort_keys=True))

  app.run(run, argv)


if __name__ == "__main__":
  main()
