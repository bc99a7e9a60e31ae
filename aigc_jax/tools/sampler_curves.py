r"""FID (and class agreement, or a text-to-image run's digit and relation accuracy) of a trained
diffusion run under many sampler settings, with plots.

  python -m aigc_jax.tools.sampler_curves --workdir=DIR \
      [--samplers=ddpm,ddim,heun,dpm++2m] [--steps=10,20,50,100,250] \
      [--guidance=0,1,1.5,2,3,4,6 --guidance_steps=20] [--no_ema] [--split=validation]

Each setting draws `--samples` images with the run's FID evaluator (the project's MNIST scorer,
the same fixed noise for every setting) and is scored against the split's real floor. Writes
DIR/curves/sampler_curves.jsonl (one record per setting, appended and resumed: settings already
scored are skipped), fid_vs_steps.png (one line per sampler) and, for a conditional run,
guidance.png (FID and class agreement, or digit and relation accuracy, against the weight). `--no_ema` scores the live weights
beside the averaged ones. Choices (the experiment's sampler, steps, guidance) are made on the
validation split; --split=test gives the reported figures.
"""

import json
import os
import sys
import time

from absl import app, flags, logging
import jax

from aigc_jax import checkpoint, evaluators, sharding, tasks, writers
from aigc_jax.errors import ConfigError
from aigc_jax.evaluators import compositions, fid

FLAGS = flags.FLAGS


SCORERS = ("fid", "compositions")  # class- or un-conditional runs; text-to-image runs
KEPT = ("fid", "is", "fid_floor", "label_agreement", "digit_accuracy", "relation_accuracy",
        "exact_accuracy", "swap_rate")


def _scorer(config) -> tuple[str, str]:
  """(evaluator type, classifier workdir): the run's compositions scorer if it has one (text
  to image: digits and relations), else its FID evaluator's."""
  for kind in reversed(SCORERS):
    for ec in config.evals.values():
      if ec.get("type") == kind and ec.get("classifier_workdir"):
        return kind, ec.classifier_workdir
  raise ConfigError("The run has no FID or compositions evaluator with a classifier_workdir to "
                    "score with.")


def score(workdir: str, settings: list[dict], split: str, samples: int, batch: int,
          out_path: str) -> list[dict]:
  """Scores each setting ({"name", "steps", "guidance", "ema"}); records kept in out_path."""
  trained = checkpoint.load_workdir(workdir, "latest")
  done = []
  if os.path.exists(out_path):
    done = [json.loads(line) for line in open(out_path) if line.strip()]
  key = lambda r: (r["name"], r["steps"], r["guidance"], r["ema"], r["split"], r["samples"])  # noqa: E731
  seen = {key(r) for r in done}
  mesh = sharding.make_mesh(trained.config.mesh)
  splits = {}
  for s in settings:
    record = {**s, "split": split, "samples": samples}
    if key(record) in seen:
      continue
    config = trained.config
    config.sampler.update(name=s["name"], steps=s["steps"], guidance=s["guidance"])
    task = tasks.get_task(config)
    ctx = evaluators.Context(config=config, task=task, mesh=mesh, workdir=workdir,
                             variables_sharding=None, splits=splits)
    kind, scorer = _scorer(config)
    extra = {"grid": 0} if kind == "compositions" else {}
    ec = evaluators.resolve(evaluators.spec(kind, split=split, samples=samples, batch_size=batch,
                                            classifier_workdir=scorer, **extra), config)
    # Replicated over the mesh, beside the scorer's parameters (fid.make places them so).
    variables = jax.device_put(dict(trained.variables), jax.sharding.NamedSharding(
        mesh, jax.sharding.PartitionSpec()))
    if not s["ema"]:
      variables.pop("ema", None)
    t = time.perf_counter()
    make = compositions.make if kind == "compositions" else fid.make
    out = make("curve", ec, ctx)(variables, trained.step, None)
    record.update({k: out[k] for k in KEPT if k in out}, seconds=time.perf_counter() - t,
                  step=trained.step)
    print(json.dumps(record), flush=True)
    done.append(record)
    seen.add(key(record))
    writers.atomic_write(out_path, "".join(json.dumps(r) + "\n" for r in done))
  return done


def _most_common(values: list):
  return max(set(values), key=values.count)


def plot(records: list[dict], directory: str, split: str) -> list[str]:
  plt = writers.pyplot()
  paths = []
  records = [r for r in records if r["split"] == split]
  # The step curves are at the run's own guidance (the most common weight); a guidance curve is
  # drawn for each step count scored at two weights or more.
  own = _most_common([r["guidance"] for r in records]) if records else 1.0
  steps = [r for r in records if r["guidance"] == own]
  if steps:
    fig, ax = plt.subplots(figsize=(6, 4))
    for (name, ema) in sorted({(r["name"], r["ema"]) for r in steps}):
      pts = sorted((r["steps"], r["fid"]) for r in steps if r["name"] == name and r["ema"] == ema)
      if pts:
        ax.plot(*zip(*pts), marker="o", label=name + ("" if ema else " (no EMA)"))
    ax.axhline(steps[0]["fid_floor"], color="gray", ls="--", label="real data (floor)")
    ax.set(xscale="log", yscale="log", xlabel="sampler steps", ylabel=f"FID ({split})",
           title=f"guidance {own:g}" if own != 1.0 else None)
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    paths.append(writers.save_figure(fig, os.path.join(directory, "fid_vs_steps.png")))
  guided = sorted(n for n in {r["steps"] for r in records}
                  if len({r["guidance"] for r in records if r["steps"] == n and r["ema"]}) > 1)
  for n in guided:
    name = _most_common([r["name"] for r in records if r["steps"] == n])  # the curve's sampler
    chosen = [r for r in records if r["steps"] == n and r["ema"] and r["name"] == name]
    chosen.sort(key=lambda r: r["guidance"])
    w = [r["guidance"] for r in chosen]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(w, [r["fid"] for r in chosen], marker="o", color="C0")
    ax.set(xlabel="guidance weight w", ylabel=f"FID ({split})")
    ax2 = ax.twinx()
    shown = [k for k in ("label_agreement", "digit_accuracy", "relation_accuracy")
             if k in chosen[0]]
    for i, k in enumerate(shown):
      ax2.plot(w, [100 * r[k] for r in chosen], marker="s^v"[i], color=f"C{i + 1}",
               label=k.replace("_", " "))
    ax2.set_ylabel("class agreement (%)" if shown == ["label_agreement"] else "accuracy (%)")
    if len(shown) > 1:
      ax2.legend(loc="center right")
    ax.set_title(f"classifier-free guidance, {n} sampler steps")
    ax.grid(alpha=0.3)
    paths.append(writers.save_figure(fig, os.path.join(directory, f"guidance_{n}steps.png")))
  return paths


def main(argv=None):
  flags.DEFINE_string("workdir", None, "A trained diffusion workdir.", required=True)
  flags.DEFINE_list("samplers", ["ddpm", "ddim", "heun", "dpm++2m"], "Samplers of the curve.")
  flags.DEFINE_list("steps", ["10", "20", "50", "100", "250"], "Sampler steps of the curve.")
  flags.DEFINE_list("guidance", [], "Guidance weights (conditional runs), at --guidance_steps "
                    "with the run's own sampler.")
  flags.DEFINE_integer("guidance_steps", 20, "Sampler steps of the guidance curve.")
  flags.DEFINE_bool("no_ema", False, "Also score the live weights (the run's sampler and steps).")
  flags.DEFINE_string("split", "validation", "Held-out split: the floor and the sample count.")
  flags.DEFINE_integer("samples", 1000, "Images per setting.")
  flags.DEFINE_integer("batch_size", 250, "Images per sampling call.")

  def run(_):
    if not FLAGS["verbosity"].present:
      logging.set_verbosity(logging.WARNING)
    try:
      config = checkpoint.read_config(FLAGS.workdir)
      if config.task != "diffusion":
        raise ConfigError(f"{FLAGS.workdir} is a {config.task!r} run; sampler curves need a "
                          "diffusion run.")
      own = config.sampler
      conditional = config.model.get("num_classes", 0) > 0 or bool(config.model.get("text"))
      g = own.guidance if conditional else 1.0
      settings = [{"name": n, "steps": int(k), "guidance": g, "ema": True}
                  for n in FLAGS.samplers for k in FLAGS.steps]
      settings += [{"name": own.name, "steps": FLAGS.guidance_steps, "guidance": float(w),
                    "ema": True} for w in FLAGS.guidance]
      if FLAGS.no_ema:
        settings += [{"name": own.name, "steps": own.steps, "guidance": g, "ema": e}
                     for e in (True, False)]
      directory = os.path.join(FLAGS.workdir, "curves")
      records = score(FLAGS.workdir, settings, FLAGS.split, FLAGS.samples, FLAGS.batch_size,
                      os.path.join(directory, "sampler_curves.jsonl"))
      for p in plot(records, directory, FLAGS.split):
        print(p)
    except ConfigError as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)

  app.run(run, argv)


if __name__ == "__main__":
  main()
