"""Shards: operators that split the workspaces between them by a namespace label (docs/sharding.md).

A shard serves the namespaces whose label `label` has one of its `values`: it reconciles only the
objects in them, and its watch caches set every other namespace's objects aside. Exactly one shard owns
the cluster's shared objects (the serverless namespace's pools and policy, the CatalogModels' status);
it counts every ServerlessEndpoint of the cluster, whichever shard serves it. Unsharded (no name), one
operator serves every namespace and owns the shared objects, as before shards existed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from modelcatalog import GROUP

LABEL = f"{GROUP}/shard"
PEERING = "modelcatalog"  # kopf's ClusterKopfPeering of an unsharded operator; a shard's adds its name
# A label value: at most 63 characters, alphanumeric at both ends, - _ . inside.
LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


class ShardError(ValueError):
    """A shard setting the operator cannot use: named, with what it expects."""


@dataclass(frozen=True)
class Shard:
    name: str | None = None  # None: not sharded
    label: str = LABEL
    values: tuple[str, ...] = ()
    owns_shared: bool = True

    @classmethod
    def of(cls, name: str | None, label: str, values: tuple[str, ...], owns_shared: bool) -> Shard:
        """Checked: the label values this shard serves default to its name."""
        if not name:
            if values:
                raise ShardError("MODELCATALOG_SHARD_VALUES is set but MODELCATALOG_SHARD is not: name the shard")
            return cls(owns_shared=True)
        values = values or (name,)
        if not LABEL_KEY.match(label):
            raise ShardError(f"MODELCATALOG_SHARD_LABEL={label!r}: expected a label key such as {LABEL}")
        for value in (name, *values):
            if not LABEL_VALUE.match(value):
                raise ShardError(f"shard {value!r}: expected a label value (letters, digits, - _ ., at most 63)")
        return cls(name, label, tuple(values), owns_shared)

    @property
    def sharded(self) -> bool:
        return self.name is not None

    def selector(self) -> str:
        """The label selector of the namespaces this shard serves."""
        return f"{self.label} in ({','.join(self.values)})"

    def serves_labels(self, labels: Mapping[str, str] | None) -> bool:
        """Whether a namespace with these labels is this shard's (unsharded: every namespace is)."""
        return not self.sharded or (labels or {}).get(self.label) in self.values

    def peering(self) -> str:
        """The ClusterKopfPeering this shard's replicas share: one active replica per shard."""
        return f"{PEERING}-{self.name}" if self.sharded else PEERING
