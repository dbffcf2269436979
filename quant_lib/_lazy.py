"""Deferred imports for heavy libraries, so that loading a module (and the Dagster code location
that imports it) does not pay for libraries only its functions use."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule(ModuleType):
    """A stand-in for `name` that imports the real module on first attribute access.

    `cp = LazyModule("cvxpy")` at module top, then `cp.Variable(...)` inside functions: cvxpy is
    imported the first time a function runs, not when the module is loaded.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__dict__["_lazy_target"] = None

    def _load(self) -> ModuleType:
        target = self.__dict__["_lazy_target"]
        if target is None:
            target = importlib.import_module(self.__name__)
            self.__dict__["_lazy_target"] = target
        return target

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._load(), attr)

    def __dir__(self) -> list[str]:
        return dir(self._load())
