"""Find tasks, models and data builders by module name (big_vision style, no decorators)."""

import importlib
import pkgutil

from aigc_jax.errors import ConfigError


def available(package: str) -> list[str]:
  pkg = importlib.import_module(package)
  return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def import_member(package: str, name: str, kind: str):
  """Imports `package.name`; an unknown name is a ConfigError that lists the valid ones."""
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
