"""A read-only, hashable mapping for the config's tables (labels, keymap, alert routes).

``MappingProxyType`` is read-only but unhashable, which would make a frozen ``HostConfig``
unhashable too — and hosts are natural dict keys (one watcher per host).
"""

from __future__ import annotations

from typing import Iterator, Mapping, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class FrozenMap(Mapping[K, V]):
    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[K, V] | None = None):
        self._data = dict(data or {})
        self._hash: int | None = None

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._data) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"
