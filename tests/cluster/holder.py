"""Holds a Ray cluster for the tests: a head (no CPUs, so no task runs there) and two
worker nodes of one CPU each, all on this machine.  Prints the address, then waits until
its standard input closes and shuts the cluster down.

A process of its own: a driver that connects to a cluster living in its own process loses
its actors, and the gate under test runs as ``verify gate --cluster ADDRESS`` anyway."""

from __future__ import annotations

import sys

from ray.cluster_utils import Cluster

cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
cluster.add_node(num_cpus=1)
cluster.add_node(num_cpus=1)
cluster.wait_for_nodes()
print(cluster.address, flush=True)
sys.stdin.read()
cluster.shutdown()
