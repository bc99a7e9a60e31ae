"""Find things by name: tasks, models, options, evaluators and data builders by module name
(big_vision style, no decorators), and ops by name in "op1|op2(args)" specs."""

import ast
import importlib
import pkgutil
from typing import Callable

from aigc_jax.errors import ConfigError


def available(package: str) -> list[str]:
  pkg = importlib.import_module(package)
  return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def import_member(package: str, name: str, kind: str):
  """Imports `package.name`, or `name` itself when it is a dotted module path (a module of
  your own project); an unknown name is a ConfigError that lists the valid ones."""
  if "." in name:
    try:
      return importlib.import_module(name)
    except ImportError as e:
      raise ConfigError(f"The {kind} module {name!r} cannot be imported ({e}).") from e
  names = available(package)
  if name not in names:
    raise ConfigError(f"Unknown {kind} {name!r}. Valid {kind}s: {', '.join(names)}.")
  return importlib.import_module(f"{package}.{name}")


def import_function(spec: str):
  """"package.module:function" -> the function; a bad spec is a ConfigError naming it."""
  module_name, _, fn_name = spec.partition(":")
  try:
    fn = getattr(importlib.import_module(module_name), fn_name) if fn_name else None
  except (ImportError, AttributeError) as e:
    raise ConfigError(f"runner={spec!r} cannot be imported ({e}); give 'module:function'.") from e
  if not callable(fn):
    raise ConfigError(f"runner={spec!r} names no function; give 'module:function'.")
  return fn


def _parse_call(text: str, kind: str):
  try:
    node = ast.parse(text.strip(), mode="eval").body
  except SyntaxError as e:
    raise ConfigError(f"Cannot parse {kind} {text!r}: {e.msg}.") from None
  if isinstance(node, ast.Name):
    return node.id, (), {}
  if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
    raise ConfigError(f"{kind.capitalize()} {text!r} is not of the form name(args).")
  try:
    args = tuple(ast.literal_eval(a) for a in node.args)
    kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
  except ValueError:
    raise ConfigError(f"Arguments of {kind} {text!r} must be literals.") from None
  return node.func.id, args, kwargs


def parse_calls(spec: str, ops: dict, kind: str) -> list[tuple[str, Callable]]:
  """"a|b(1, k=2)" -> [(text, ops[name](*args, **kwargs))], checked against `ops`. The
  one parser of preprocessing, augmentation and cleaning specs."""
  out = []
  for part in filter(None, (p.strip() for p in spec.split("|"))):
    name, args, kwargs = _parse_call(part, kind)
    if name not in ops:
      raise ConfigError(f"Unknown {kind} {name!r} in {spec!r}; "
                        f"valid ops: {', '.join(sorted(ops))}.")
    try:
      out.append((part, ops[name](*args, **kwargs)))
    except TypeError as e:
      raise ConfigError(f"Bad arguments for {kind} {part!r}: {e}.") from None
  return out
