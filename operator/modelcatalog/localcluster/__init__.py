"""A real Kubernetes control plane as local processes, with simulated GPU node pools (kwok)."""

from modelcatalog.localcluster.cluster import ClusterStartError, LocalCluster
from modelcatalog.localcluster.nodes import node_manifests

__all__ = ["ClusterStartError", "LocalCluster", "node_manifests"]
