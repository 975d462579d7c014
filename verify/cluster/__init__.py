"""Running work on a Ray cluster: the executor behind ``--cluster`` (docs/cluster.md).

:class:`~verify.cluster.ray_pool.RayPool` connects to a cluster (or starts a local
one), runs tasks with bounded retries and per-task hard timeouts, and hands back each
task's outcome once, in order of completion.  ``verify gate --cluster``, ``verify run
--cluster`` / ``benchmarks/run_family.py --cluster`` (one task per property or
instance) and ``verify check --cluster`` (branch and bound of one property spread over
the cluster, :mod:`verify.refine.distributed`) use it.

Ray is an optional extra (``pip install -e '.[ray]'``); nothing here imports it until a
pool is opened.  This package sits at the bottom of the layering: it knows tasks, not
networks.
"""

from __future__ import annotations

from verify.cluster.ray_pool import GRACE, RETRIES, ClusterError, RayPool, Task, TaskOutcome

__all__ = ["GRACE", "RETRIES", "ClusterError", "RayPool", "Task", "TaskOutcome"]
