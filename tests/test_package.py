"""The package's shape, read from its source: imports run one way (no circle, the library never
reaches up to the trainer or the experiments), the loop names no option, and the eval-function
names are declared once."""

import ast
import pathlib
import re

from aigc_jax import tasks

PKG = pathlib.Path(__file__).resolve().parent.parent / "aigc_jax"
# Entry points may import the trainer: the command line and the tools.
ENTRY = re.compile(r"^aigc_jax\.(main|sample|tools(\..*)?)$")
# Imports inside functions, each for a reason a module-level import cannot serve.
DEFERRED = {
    "aigc_jax.main": "jax must see --config.cpu_devices before a backend starts",
    "aigc_jax.data.clean": "its spawned cleaning workers must not import jax",
}


def _modules() -> dict[str, pathlib.Path]:
  out = {}
  for p in PKG.rglob("*.py"):
    parts = p.relative_to(PKG.parent).with_suffix("").parts
    out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
  return out


MODULES = _modules()


def _imports(path: pathlib.Path):
  """(imported project module, inside a function?) for every import in the file."""
  tree = ast.parse(path.read_text())
  in_function = set()
  for node in ast.walk(tree):
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
      in_function.update(id(n) for n in ast.walk(node) if n is not node)
  for node in ast.walk(tree):
    names = []
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module:
      # `from a import b` imports a.b when that is a module, else a name of a.
      names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
               for a in node.names]
    for name in names:
      if name.split(".")[0] in ("aigc_jax", "experiments"):
        yield name, id(node) in in_function


def _graph() -> dict[str, set]:
  graph = {}
  for name, path in MODULES.items():
    deps = {n for n, _ in _imports(path) if n in MODULES}
    parent = name.rpartition(".")[0]
    if parent in MODULES:  # importing a submodule runs its package's __init__ first
      deps.add(parent)
    graph[name] = deps - {name}
  return graph


def test_no_import_circle():
  graph, state, stack = _graph(), {}, []

  def visit(m):
    state[m] = "open"
    stack.append(m)
    for d in sorted(graph[m]):
      if state.get(d) == "open":
        raise AssertionError("import circle: " + " -> ".join(stack[stack.index(d):] + [d]))
      if d not in state:
        visit(d)
    stack.pop()
    state[m] = "done"

  for m in sorted(graph):
    if m not in state:
      visit(m)
  assert len(graph) > 80  # the walk saw the whole package


def test_the_library_never_imports_experiments_or_the_trainer():
  bad = [(m, n) for m, p in MODULES.items() if not ENTRY.match(m) for n, _ in _imports(p)
         if n.startswith("experiments") or n == "aigc_jax.train"]
  assert not bad
  assert any(n == "aigc_jax.train" for n, _ in _imports(MODULES["aigc_jax.tools.scorer"]))


def test_imports_inside_functions_are_the_documented_few():
  deferred = {m for m, p in MODULES.items() for _, inside in _imports(p) if inside}
  assert deferred == set(DEFERRED)


def test_the_loop_names_no_option_and_fits_a_screen():
  source = MODULES["aigc_jax.train"].read_text()
  run = next(n for n in ast.parse(source).body if getattr(n, "name", "") == "run")
  assert run.end_lineno - run.lineno + 1 <= 120
  named = [w for w in ("dp", "fed", "prune", "privacy", "federated", "pruning", "augment",
                       "transfer", "freeze", "precision", "qat") if re.search(rf"\b{w}\b", source)]
  assert not named


def _is_function(node) -> bool:
  return isinstance(node, ast.Name) and node.id.islower() and node.id not in ("True", "False")


def test_eval_function_names_are_declared_once():
  """Only tasks.EVAL_FNS lists them; everything else (the precision option, the evaluators)
  reads that table, so a new name cannot be missed by one of them."""
  names = set(tasks.EVAL_FNS)
  lists = []
  for m, path in MODULES.items():
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)):
        items = node.keys if isinstance(node, ast.Dict) else node.elts
        if isinstance(node, ast.Dict) and not all(
            isinstance(v, (ast.Constant, ast.Name)) and not _is_function(v) for v in node.values):
          continue  # a task's {name: function} provides them, it does not declare them
        found = {i.value for i in items if isinstance(i, ast.Constant)} & names
        if len(found) >= 3:
          lists.append(m)
  assert lists == ["aigc_jax.tasks"]
  assert all(v in (tasks.VARIABLES, tasks.HOST) for v in tasks.EVAL_FNS.values())


def test_every_folder_of_modules_is_a_package():
  """setup.cfg's find_packages installs only folders with an __init__.py."""
  folders = {p.parent for p in PKG.rglob("*.py") if "__pycache__" not in p.parts}
  assert all((f / "__init__.py").exists() for f in folders), sorted(
      str(f) for f in folders if not (f / "__init__.py").exists())
