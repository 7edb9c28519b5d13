"""Watch caches: one resource kept current in memory by list + watch, with secondary indexes.

Each cache lists its resource (in pages), then watches from the list's resourceVersion, relisting when
the server says the version is too old (410). `listed` is set once the first list is in, so reconciles
can wait for every cache before they read (a restart then sees the existing children and writes
nothing). Objects are slimmed on the way in (`slim`), so memory holds only what reconciles read.
A change calls `on_change(old, new)`; that is where controllers queue the reconciles it concerns.

A cache with a `scope` (a shard's, docs/sharding.md) holds only the objects of the namespaces the scope
admits: the others are set aside, unindexed and unannounced, and kept current by the same watch, so
`admit(namespace)` announces them as new and `release(namespace)` sets them aside without a word.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from modelcatalog.kube.client import ApiError, KubeClient
from modelcatalog.kube.resources import ResourceInfo

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
ObjKey = tuple[str | None, str]  # namespace, name
IndexFn = Callable[[Obj], Iterable[Hashable]]
ChangeFn = Callable[[Obj | None, Obj | None], None]
ScopeFn = Callable[[str], bool]  # whether the cache holds a namespace's objects
PAGE_SIZE = "500"
RETRY_SECONDS = 2.0
WATCH_READ_TIMEOUT = 330  # seconds without a byte; the server ends each watch after timeoutSeconds (270)


def key_of(obj: Obj) -> ObjKey:
    meta = obj["metadata"]
    return meta.get("namespace"), meta["name"]


def version_of(obj: Obj | None) -> str | None:
    return None if obj is None else obj["metadata"].get("resourceVersion")


def whole(obj: Obj) -> Obj:
    return obj


class WatchCache:
    def __init__(
        self,
        client: KubeClient,
        info: ResourceInfo,
        *,
        label_selector: str | None = None,
        slim: Callable[[Obj], Obj] = whole,
        indexes: dict[str, IndexFn] | None = None,
        on_change: ChangeFn | None = None,
        scope: ScopeFn | None = None,
    ) -> None:
        self.info = info
        self.listed = asyncio.Event()
        self._client = client
        self._params = {"labelSelector": label_selector} if label_selector else {}
        self._slim = slim
        self._index_fns = indexes or {}
        self._on_change = on_change
        self._objects: dict[ObjKey, Obj] = {}
        self._scope = scope
        self._aside: defaultdict[str, dict[ObjKey, Obj]] = defaultdict(dict)  # out of scope, by namespace
        self._indexes: dict[str, defaultdict[Hashable, dict[ObjKey, Obj]]] = {
            name: defaultdict(dict) for name in self._index_fns
        }

    def get(self, namespace: str | None, name: str) -> Obj | None:
        return self._objects.get((namespace, name))

    def by(self, index: str, key: Hashable) -> list[Obj]:
        return list(self._indexes[index].get(key, {}).values())

    def all(self) -> list[Obj]:
        return list(self._objects.values())

    async def run(self) -> None:
        """List, then watch, forever; errors are logged and retried, never raised."""
        while True:
            try:
                version: str | None = await self._relist()
                self.listed.set()
                while version is not None:
                    version = await self._watch(version)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the cache must outlive any one failure of the API server
                logger.warning("watch of %s failed, relisting in %.0f s: %s", self.info.plural, RETRY_SECONDS, error)
                await asyncio.sleep(RETRY_SECONDS)

    async def _relist(self) -> str:
        found: dict[ObjKey, Obj] = {}
        params = {**self._params, "limit": PAGE_SIZE}
        while True:
            page = await self._client.list_page(self.info, params)
            for item in page.get("items") or []:
                item.setdefault("apiVersion", self.info.api_version)
                item.setdefault("kind", self.info.kind)
                found[key_of(item)] = self._slim(item)
            cont = (page.get("metadata") or {}).get("continue")
            if not cont:
                break
            params = {**params, "continue": cont}
        for key in set(self._objects) - set(found):
            self._store(key, None)
        for namespace, aside in list(self._aside.items()):
            for key in set(aside) - set(found):
                self._set_aside(namespace, key, None)
        for key, obj in found.items():
            self._store(key, obj)
        return str(page["metadata"]["resourceVersion"])

    async def _watch(self, version: str) -> str | None:
        """Follow events from `version`; the version to resume from, or None to relist."""
        params = {**self._params, "resourceVersion": version, "timeoutSeconds": "270", "allowWatchBookmarks": "true"}
        try:
            async for event in self._client.watch(self.info.path(), params, WATCH_READ_TIMEOUT):
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    return None if obj.get("code") == 410 else version
                version = obj.get("metadata", {}).get("resourceVersion") or version
                if kind == "BOOKMARK":
                    continue
                obj.setdefault("apiVersion", self.info.api_version)
                obj.setdefault("kind", self.info.kind)
                self._store(key_of(obj), None if kind == "DELETED" else self._slim(obj))
        except ApiError as error:
            if error.status == 410:
                return None
            raise
        return version

    def admit(self, namespace: str) -> None:
        """The scope now holds `namespace`: its objects set aside are announced as new."""
        for key, obj in self._aside.pop(namespace, {}).items():
            self._store(key, obj)

    def release(self, namespace: str) -> None:
        """The scope no longer holds `namespace`: its objects are set aside, unannounced."""
        for key in [k for k in self._objects if k[0] == namespace]:
            obj = self._objects[key]
            self._unindex(key, obj)
            del self._objects[key]
            self._aside[namespace][key] = obj

    def _set_aside(self, namespace: str, key: ObjKey, new: Obj | None) -> None:
        if new is not None:
            self._aside[namespace][key] = new
            return
        aside = self._aside.get(namespace)
        if aside is not None:
            aside.pop(key, None)
            if not aside:
                del self._aside[namespace]

    def _unindex(self, key: ObjKey, obj: Obj) -> None:
        for name, fn in self._index_fns.items():
            index = self._indexes[name]
            for value in fn(obj):
                index[value].pop(key, None)
                if not index[value]:
                    del index[value]

    def _store(self, key: ObjKey, new: Obj | None) -> None:
        namespace = key[0]
        if namespace is not None and self._scope is not None and not self._scope(namespace):
            self._set_aside(namespace, key, new)
            return
        old = self._objects.pop(key, None) if new is None else self._objects.get(key)
        if new is not None:
            self._objects[key] = new
        if old is not None:
            self._unindex(key, old)
        if new is not None:
            for name, fn in self._index_fns.items():
                for value in fn(new):
                    self._indexes[name][value][key] = new
        if self._on_change is not None and version_of(old) != version_of(new):
            self._on_change(old, new)
