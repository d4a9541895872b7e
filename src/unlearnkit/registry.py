"""A name → object registry. Duplicate names raise; unknown names suggest close matches.

Plug-ins register themselves when their module is imported; :func:`import_modules` imports every module of a
registry's package (methods, tasks, attacks, pretrained families), so a new file is all a plug-in needs."""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from contextlib import contextmanager
from typing import Callable, Generic, Iterator, TypeVar

from unlearnkit.errors import UnlearnkitError

T = TypeVar("T")


def import_modules(package: str, skip: tuple[str, ...] = ()) -> None:
    """Import every module of ``package`` (a dotted name) except ``skip``."""
    for m in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if m.name not in skip:
            importlib.import_module(f"{package}.{m.name}")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        key = name.lower()
        if key in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[key] = obj

    def remove(self, name: str) -> T:
        """Unregister ``name`` (unknown names raise like :meth:`get`); returns what it held."""
        obj = self.get(name)
        del self._items[name.lower()]
        return obj

    @contextmanager
    def added(self, name: str, obj: T) -> Iterator[T]:
        """``obj`` registered as ``name`` inside the ``with`` block only (tests, temporary plug-ins)."""
        self.add(name, obj)
        try:
            yield obj
        finally:
            self.remove(name)

    def get(self, name: str) -> T:
        key = name.lower()
        if key not in self._items:
            raise UnlearnkitError(self.unknown_message(name))
        return self._items[key]

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name.lower(), list(self._items), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(sorted(self._items))}."

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._items.items())

    def in_order(self) -> list[T]:
        """The registered objects in registration order."""
        return list(self._items.values())

    def __len__(self) -> int:
        return len(self._items)
