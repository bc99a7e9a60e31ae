"""Re-checks the published figures: runs the experiment variants benchmarks/published.json lists
and compares each figure with the value the docs publish.

  python -m benchmarks.reproduce [--full] [--only=cnn_mnist,dcgan_mnist:quick] [--workdir=DIR]
      [--fresh] [--update] [--check_docs]

Without --full it runs the `quick` set (each experiment's quick variant and `fast`); --full runs
every entry (defaults and other published variants too). Each variant runs as its own process,
one after another, into DIR/runs/NAME, its wall time measured around the process; one that
finished before (DIR/runs/NAME.done.json) is read, not rerun, unless --fresh, so a killed
reproduce resumes. The table (figure, published, measured, difference, tolerance, within it or
not, wall times) is printed and written to DIR/reproduce.md and .json, with the environment's
differences from the one each figure was measured with. Exit status 1 when a figure is beyond
its tolerance or missing, or a run failed. --update writes the measured values, wall times and
this environment into published.json (a deliberate change); the docs must then quote the new
values, which --check_docs (and tests/test_benchmarks_reproduce.py) verifies.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from importlib import metadata

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUBLISHED = os.path.join(REPO, "benchmarks", "published.json")
SHARED_DATA = os.path.join(os.path.dirname(REPO), "shared", "data")
PACKAGES = ("jax", "jaxlib", "flax", "optax")
ENV_KEYS = ("cpu", "cores") + PACKAGES + ("python",)
FAILING = ("NO", "missing", "failed")  # statuses that make the exit status 1


def environment() -> dict:
  """What a figure was measured with: CPU model, cores, package versions, Python, date."""
  def version(package):
    try:
      return metadata.version(package)
    except metadata.PackageNotFoundError:
      return None
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      cpu = next((x.split(":", 1)[1].strip() for x in f if x.startswith("model name")), cpu)
  except OSError:
    pass
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return {"cpu": cpu, "cores": cores, **{p: version(p) for p in PACKAGES},
          "python": platform.python_version(), "date": datetime.date.today().isoformat()}


def env_diff(published: dict | None, current: dict) -> list[str]:
  """How `current` differs from a figure's `measured_with`; a recorded "3.12" matches "3.12.1"."""
  out = []
  for key in ENV_KEYS:
    p, c = (published or {}).get(key), current.get(key)
    if p is None:
      out.append(f"{key} not recorded (now {c})")
    elif str(c) != str(p) and not str(c).startswith(f"{p}."):
      out.append(f"{key} {p} -> {c}")
  return out


def load(path: str = PUBLISHED) -> dict:
  with open(path) as f:
    return json.load(f)


def save(published: dict, path: str = PUBLISHED) -> None:
  tmp = f"{path}.tmp"
  with open(tmp, "w") as f:
    f.write(json.dumps(published, indent=2, ensure_ascii=False) + "\n")
  os.replace(tmp, path)


def show(value, figure: dict) -> str:
  """A value as the docs print it: the figure's format, with `pct` = 100 x value available."""
  return figure["format"].format(value, pct=100 * value)


def _delta(d: float, unit: str) -> str:
  return f"{100 * d:+.2f} pt" if unit == "fraction" else f"{d:+.4g}"


def wall_texts(seconds: float) -> set:
  """The ways the docs write a wall time: "54 s", "70.5 s", "4 min 14 s", "51 min"."""
  m, s = divmod(round(seconds), 60)
  out = {f"{seconds:g} s", f"{seconds:.1f} s", f"{round(seconds)} s"}
  if m:
    out |= {f"{m} min {s} s"} | ({f"{m} min"} if s == 0 else set())
  return out


def _occurs(shown: str, text: str) -> bool:
  return re.search(r"(?<![\d.])" + re.escape(shown) + r"(?!\d)", text) is not None


def check_docs(published: dict, root: str = REPO) -> list[str]:
  """Every published value (and wall time) must occur, formatted as the docs format it, in each
  file its entry says quotes it: docs and published.json cannot disagree silently."""
  texts, problems = {}, []

  def text(path):
    if path not in texts:
      with open(os.path.join(root, path)) as f:
        texts[path] = " ".join(f.read().split())  # a number may be wrapped across lines
    return texts[path]

  for name, entry in published["experiments"].items():
    for key, fig in entry["figures"].items():
      if fig["value"] is None:
        continue
      for doc in fig.get("docs", entry.get("docs", [])):
        if not _occurs(show(fig["value"], fig), text(doc)):
          problems.append(f"{name} {key}: {show(fig['value'], fig)!r} is not in {doc}")
    if entry.get("wall_s") is not None:
      for doc in entry.get("wall_docs", entry.get("docs", [])):
        if not any(_occurs(w, text(doc)) for w in wall_texts(entry["wall_s"])):
          problems.append(f"{name} wall: {entry['wall_s']} s is not in {doc}")
  return problems


def select(published: dict, full: bool, only: str) -> list[str]:
  """Entries to run: the quick set (or all with --full); --only names entries ("cnn_mnist:quick",
  any set) or experiments ("cnn_mnist": its entries in the chosen set)."""
  entries = published["experiments"]
  chosen = [n for n in entries if full or entries[n]["set"] == "quick"]
  if not only:
    return chosen
  wanted = [w.strip() for w in only.split(",") if w.strip()]
  experiments = {n.split(":")[0] for n in entries}
  unknown = [w for w in wanted if w not in entries and w not in experiments]
  if unknown:
    raise SystemExit(f"--only: unknown {unknown}; valid: {', '.join(entries)}, or an "
                     "experiment's name")
  return [n for n in entries if n in wanted or (n in chosen and n.split(":")[0] in wanted)]


def command(name: str, entry: dict, workdir: str) -> list[str]:
  """The variant's own command line: aigc_jax.main, or a table's `python -m experiments.NAME`."""
  exp, _, variant = name.partition(":")
  if entry.get("runner", "main") == "table":
    cmd = [sys.executable, "-m", f"experiments.{exp}", f"--workdir={workdir}"]
    cmd += [] if variant == "default" else [f"--variant={variant}"]
  else:
    spec = f"experiments/{exp}.py" + ("" if variant == "default" else f":{variant}")
    cmd = [sys.executable, "-m", "aigc_jax.main", f"--config={spec}", f"--workdir={workdir}",
           "--config.train.progress_bar=False"]
  return cmd + list(entry.get("overrides", ()))  # overrides: for tests' tiny runs only


def run_process(cmd: list[str], log_path: str) -> tuple[int, float]:
  """Runs `cmd` from the repository root, its output to `log_path`: (exit status, wall s)."""
  env = dict(os.environ)
  if not env.get("AIGC_JAX_DATA") and os.path.isdir(SHARED_DATA):
    env["AIGC_JAX_DATA"] = SHARED_DATA  # the layout the experiments expect, beside the repo
  t = time.perf_counter()
  with open(log_path, "w") as log:
    rc = subprocess.run(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
  return rc, time.perf_counter() - t


def run_entry(name: str, entry: dict, root: str, fresh: bool) -> dict:
  """Runs one variant (or reads its finished run): its record and summary."""
  wd = os.path.join(root, "runs", name.replace(":", "_"))
  done, log = f"{wd}.done.json", f"{wd}.log"
  if fresh:
    shutil.rmtree(wd, ignore_errors=True)
    if os.path.exists(done):
      os.remove(done)
  if os.path.exists(done):
    with open(done) as f:
      rec = {**json.load(f), "reused": True}
  else:
    partial = os.path.isdir(wd)  # a killed earlier run resumes: its wall time is a remainder
    cmd = command(name, entry, wd)
    load = os.getloadavg()[0]  # > 0.5 or so: something else ran, and the wall time shows it
    rc, wall = run_process(cmd, log)
    rec = {"command": cmd, "rc": rc, "wall_s": wall, "partial": partial,
           "environment": environment(), "load_at_start": round(load, 2)}
    if rc == 0:
      with open(done, "w") as f:
        json.dump(rec, f, indent=1)
    else:
      with open(log) as f:
        tail = f.read()[-2000:]
      print(f"  failed (exit status {rc}); the end of {log}:\n{tail}", flush=True)
  rec["log"] = log
  try:
    with open(os.path.join(wd, entry.get("summary", "summary.json"))) as f:
      rec["summary"] = json.load(f)
  except (OSError, ValueError):
    rec["summary"] = None
  return rec


def lookup(summary: dict, path: str) -> float:
  """The number at a dotted path ("table.model=mlp.test_accuracy.mean"); a key that holds dots
  itself is matched whole."""
  node, parts = summary, path.split(".")
  while parts:
    for i in range(len(parts), 0, -1):
      if isinstance(node, dict) and ".".join(parts[:i]) in node:
        node, parts = node[".".join(parts[:i])], parts[i:]
        break
    else:
      raise KeyError(path)
  if isinstance(node, bool) or not isinstance(node, (int, float)):
    raise KeyError(path)
  return float(node)


def compare(name: str, entry: dict, rec: dict) -> list[dict]:
  """One row per figure, then the wall-time row (shown, never judged: it depends on the load)."""
  rows = []
  for key, fig in entry["figures"].items():
    row = {"experiment": name, "figure": key, "unit": fig["unit"], "published": fig["value"],
           "tolerance": fig["tolerance"], "measured": None, "difference": None}
    if rec["rc"] != 0:
      row["status"] = "failed"
    else:
      try:
        row["measured"] = lookup(rec["summary"] or {}, key)
      except KeyError:
        row["status"] = "missing"
        rows.append(row)
        continue
      if fig["value"] is None:
        row["status"] = "unpublished"
      else:
        row["difference"] = row["measured"] - fig["value"]
        row["status"] = "yes" if abs(row["difference"]) <= fig["tolerance"] + 1e-12 else "NO"
    rows.append(row)
  wall = rec["wall_s"] if rec["rc"] == 0 else None
  rows.append({"experiment": name, "figure": "wall", "unit": "s", "published": entry.get("wall_s"),
               "measured": wall, "tolerance": None,
               "difference": wall - entry["wall_s"] if wall and entry.get("wall_s") else None,
               "status": "partial run" if rec.get("partial") else "not judged"})
  return rows


def _cells(row: dict, figures: dict) -> list[str]:
  def num(v):
    if v is None:
      return "-"
    if row["figure"] == "wall":
      return f"{v:.1f} s"
    return show(v, figures[row["figure"]])
  if row["difference"] is None:
    diff = "-"
  elif row["figure"] == "wall":
    diff = f"{100 * row['difference'] / row['published']:+.0f}%"
  else:
    diff = _delta(row["difference"], row["unit"])
  tol = "-" if row["tolerance"] is None else _delta(row["tolerance"], row["unit"]).lstrip("+")
  return [row["experiment"], row["figure"], num(row["published"]), num(row["measured"]), diff,
          tol, row["status"]]


HEADER = ["experiment", "figure", "published", "measured", "difference", "tolerance", "within"]


def report(published: dict, rows: list[dict], diffs: dict, env: dict) -> tuple[str, str]:
  """(the table as fixed-width text, the same as markdown)."""
  cells = [_cells(r, published["experiments"][r["experiment"]]["figures"]) for r in rows]
  widths = [max(len(c[i]) for c in cells + [HEADER]) for i in range(len(HEADER))]
  text = ["  ".join(h.ljust(w) for h, w in zip(HEADER, widths))]
  text += ["  ".join(c.ljust(w) for c, w in zip(cell, widths)) for cell in cells]
  md = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
  md += ["| " + " | ".join(c.replace("|", "\\|") for c in cell) + " |" for cell in cells]
  here = (f"Measured on {env['cpu']} ({env['cores']} cores), "
          + ", ".join(f"{p} {env[p]}" for p in PACKAGES) + f", Python {env['python']}, "
          + env["date"] + ".")
  notes = [f"{name}: {what} differs from the published run's: {'; '.join(d)}"
           for name, kinds in diffs.items() for what, d in kinds.items() if d]
  return ("\n".join(text + [""] + notes + [here]),
          "\n".join(md + [""] + [f"- {n}" for n in notes] + ["", here]) + "\n")


def _rounded(v: float) -> float | int:
  return int(v) if float(v).is_integer() else float(f"{v:.6g}")


def update(published: dict, runs: dict, keep_wall: bool = False) -> list[str]:
  """Writes what was measured into `published` (in place): values, wall times (unless
  `keep_wall`: figures re-measured on a shared machine), environment."""
  updated = []
  for name, rec in runs.items():
    entry = published["experiments"][name]
    if rec["rc"] != 0:
      continue
    for key, fig in entry["figures"].items():
      try:
        fig["value"] = _rounded(lookup(rec["summary"] or {}, key))
      except KeyError:
        pass  # reported as missing; its key, not its value, needs the change
    if rec.get("partial") or keep_wall:  # a resumed run's wall time is a remainder
      entry.setdefault("wall_measured_with", entry.get("measured_with"))
    else:
      entry["wall_s"] = round(rec["wall_s"], 1)
      entry.pop("wall_measured_with", None)
    entry["measured_with"] = rec["environment"]
    updated.append(name)
  return updated


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m benchmarks.reproduce", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--full", action="store_true", help="every entry, not only the quick set")
  p.add_argument("--only", default="", help="comma-separated entries or experiment names")
  p.add_argument("--workdir", default="/tmp/reproduce", help="runs, logs and the table go here")
  p.add_argument("--fresh", action="store_true", help="rerun variants that finished before")
  p.add_argument("--keep_wall", action="store_true", help="with --update: keep the published "
                 "wall times (figures re-measured while other work shared the machine)")
  p.add_argument("--update", action="store_true", help="write what was measured into "
                 "published.json (values, wall times, environment)")
  p.add_argument("--check_docs", action="store_true", help="only check that the docs quote "
                 "every published value")
  p.add_argument("--published", default=PUBLISHED, help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  published = load(args.published)
  if args.check_docs:
    problems = check_docs(published)
    print("\n".join(problems) or "The docs quote every published figure.")
    return 1 if problems else 0
  names = select(published, args.full, args.only)
  os.makedirs(os.path.join(args.workdir, "runs"), exist_ok=True)
  env = environment()
  runs, rows, diffs = {}, [], {}
  for i, name in enumerate(names):
    entry = published["experiments"][name]
    print(f"[{i + 1}/{len(names)}] {name}", flush=True)
    runs[name] = rec = run_entry(name, entry, args.workdir, args.fresh)
    rows += compare(name, entry, rec)
    here = rec.get("environment") or env
    diffs[name] = {"environment": env_diff(entry.get("measured_with"), here)}
    if "wall_measured_with" in entry:  # the wall time was measured apart from the values
      diffs[name]["wall time's environment"] = env_diff(entry["wall_measured_with"], here)
  text, md = report(published, rows, diffs, env)
  print(text, flush=True)
  with open(os.path.join(args.workdir, "reproduce.md"), "w") as f:
    f.write(md)
  ok = not any(r["status"] in FAILING for r in rows)
  with open(os.path.join(args.workdir, "reproduce.json"), "w") as f:
    json.dump({"ok": ok, "environment": env, "rows": rows, "environment_differences": diffs},
              f, indent=1)
  if args.update:
    # Read the file again: another reproduce or an edit may have changed it during the runs.
    published = load(args.published)
    updated = update(published, runs, args.keep_wall)
    save(published, args.published)
    print(f"Updated {args.published}: {', '.join(updated) or 'nothing'}.")
    stale = check_docs(published)
    print("\n".join(["The docs now disagree with published.json; edit them:"] + stale)
          if stale else "The docs quote every published figure.")
    return 0 if all(r["status"] not in ("missing", "failed") for r in rows) else 1
  print("All figures within tolerance." if ok else "Some figures drifted, are missing or failed "
        f"(see {os.path.join(args.workdir, 'reproduce.md')}).")
  return 0 if ok else 1


if __name__ == "__main__":
  sys.exit(main())
