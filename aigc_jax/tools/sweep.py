"""Run a grid of configs (e.g. models x seeds) and aggregate the summaries over seeds."""

import copy
import itertools
import json
import os
import re
from collections.abc import Mapping

import ml_collections
import numpy as np

from aigc_jax import train, writers
from aigc_jax.errors import ConfigError


_MAPPINGS = (Mapping, ml_collections.ConfigDict)


def _set(config, dotted: str, value) -> None:
  *parents, leaf = dotted.split(".")
  node = config
  for p in parents:
    node = node[p]
  if leaf not in node:
    raise ConfigError(f"Sweep key {dotted!r} is not in the config; valid keys here: {sorted(node)}.")
  if isinstance(value, _MAPPINGS):  # a whole sub-config, e.g. one model with its own fields
    value = ml_collections.ConfigDict(dict(value))
  with config.unlocked():
    node[leaf] = value


def _name(value) -> str:
  """How a swept value is shown: a sub-config by its `name`."""
  return str(value["name"]) if isinstance(value, _MAPPINGS) and "name" in value else str(value)


def expand(config) -> list[tuple[dict, object]]:
  """[(assignment, config)] for every combination of `config.sweep`."""
  keys = [k for k, _ in config.sweep]
  runs = []
  for values in itertools.product(*(v for _, v in config.sweep)):
    sub = copy.deepcopy(config)
    with sub.unlocked():
      sub.sweep = ()
    for k, v in zip(keys, values):
      _set(sub, k, v)
    runs.append((dict(zip(keys, values)), sub))
  return runs


def label(assignment: dict) -> str:
  return "_".join(re.sub(r"[^A-Za-z0-9.-]", "-", f"{k.split('.')[-1]}{_name(v)}")
                  for k, v in assignment.items())


def aggregate(results: list[tuple[dict, dict]], reference: dict) -> dict:
  """Groups runs by every swept key but `seed`; mean, std, min, max of each summary metric."""
  groups = {}
  for assignment, summary in results:
    group = ",".join(f"{k}={_name(v)}" for k, v in assignment.items() if k != "seed")
    groups.setdefault(group or "all", []).append(summary)
  table = {}
  for group, summaries in groups.items():
    row = {"runs": len(summaries)}
    for metric in summaries[0]:
      if metric == "step":
        continue
      vals = np.array([s[metric] for s in summaries], np.float64)
      row[metric] = {"mean": vals.mean(), "std": vals.std(ddof=1) if len(vals) > 1 else 0.0,
                     "min": vals.min(), "max": vals.max(), "values": vals.tolist()}
    ref_key = group.split("=")[-1]
    if ref_key in reference:
      row["reference"] = reference[ref_key]
    table[group] = row
  return table


def markdown(table: dict, metric: str) -> str:
  lines = [f"| run | {metric} (mean ± std) | min | max | runs | reference |",
           "|---|---|---|---|---|---|"]
  for group, row in table.items():
    m = row[metric]
    ref = row.get("reference", "")
    lines.append(f"| {group} | {m['mean']:.4f} ± {m['std']:.4f} | {m['min']:.4f} | "
                 f"{m['max']:.4f} | {row['runs']} | {ref} |")
  return "\n".join(lines) + "\n"


def run(config, workdir: str) -> dict:
  runs = expand(config)
  results = []
  for i, (assignment, sub) in enumerate(runs):
    sub_dir = os.path.join(workdir, label(assignment))
    print(f"[{i + 1}/{len(runs)}] {assignment} -> {sub_dir}", flush=True)
    results.append((assignment, train.run(sub, sub_dir)))
  table = aggregate(results, dict(config.reference))
  metric = config.train.best_metric or f"{config.data.eval_split}_loss"
  if not all(metric in row for row in table.values()):
    metric = sorted(k for k in next(iter(table.values())) if k not in ("runs", "reference"))[0]
  summary = {"sweep": [[k, [_name(x) for x in v]] for k, v in config.sweep], "table": table}
  writers.atomic_write(os.path.join(workdir, "summary.json"),
                       json.dumps(summary, indent=2, sort_keys=True))
  md = markdown(table, metric)
  writers.atomic_write(os.path.join(workdir, "summary.md"), md)
  print(md, flush=True)
  return summary
