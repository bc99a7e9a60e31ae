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
