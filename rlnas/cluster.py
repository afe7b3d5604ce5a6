"""Work on a Ray cluster: connecting to it, and running tasks on the nodes that offer a resource.

rlnas runs in one process unless a command is given `--ray-address ADDR` (or
the `RAY_ADDRESS` environment variable): then profiling runs on the node whose
custom resource is the device (`ray start --address HEAD --resources
'{"xavier-nx": 1}'` on the device host), and proxy scoring of a batch of
architectures runs as parallel tasks. Ray Core does the scheduling, the
retries of tasks whose worker or node died, and the transport; it is an
optional extra (`pip install ".[ray]"`) imported only here, only when an
address is given.

A task that needs a resource asks for one unit of it, so a node started with
`{"xavier-nx": 1}` runs one such task at a time: timings on one device never
overlap.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from rlnas.errors import RlnasError

# Seconds between checks that the nodes a run depends on are still there.
POLL_S = 1.0
# Times Ray reruns a task whose worker or node died before the task is given up.
RETRIES = 3

Notify = Callable[[str], None]
# Told the cluster's work so far, one short line (for a progress bar's description).
Status = Callable[[str], None]


class TaskPool(Protocol):
    """`run_tasks` bound to a cluster (and its `notify` and `status`): `pool(function,
    arguments, resource=..., gpus=...)`."""

    def __call__(
        self,
        function: Callable[..., Any],
        arguments: Sequence[tuple[Any, ...]],
        resource: str | None = None,
        gpus: int = 0,
    ) -> Iterator[tuple[int, Any]]: ...


def ray_address(option: str | None) -> str | None:
    """The cluster to use: the option, else `RAY_ADDRESS`, else None (in-process)."""
    return option or os.environ.get("RAY_ADDRESS") or None


def connect(address: str) -> Any:
    """The `ray` module, connected to the cluster at `address` (once per process).

    Raises:
        RlnasError: Ray is not installed, or no cluster answers at the address.
    """
    try:
        import ray
    except ImportError:
        raise RlnasError(
            f"--ray-address {address} needs Ray: pip install 'rlnas[ray]' (or run without "
            "--ray-address, in this process)"
        ) from None
    if not ray.is_initialized():
        try:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RlnasError(
                f"no Ray cluster at --ray-address {address} ({first}); start one with "
                "`ray start --head`, or run without --ray-address"
            ) from None
    return ray


def nodes_with(ray: Any, resource: str) -> list[dict[str, Any]]:
    """The live nodes that offer `resource`."""
    return [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get(resource)]


def require(ray: Any, resource: str, address: str) -> None:
    """Raises RlnasError unless a live node offers `resource`, naming how to add one."""
    if not nodes_with(ray, resource):
        raise RlnasError(
            f"no node of the Ray cluster at {address} offers resource '{resource}'; on the "
            f"host that has it run `ray start --address HEAD_IP:6379 --resources "
            f"'{{\"{resource}\": 1}}'`"
        )


def run_tasks(
    ray: Any,
    function: Callable[..., Any],
    arguments: Sequence[tuple[Any, ...]],
    resource: str | None = None,
    notify: Notify | None = None,
    gpus: int = 0,
    status: Status | None = None,
) -> Iterator[tuple[int, Any]]:
    """Runs `function(*args)` for each argument tuple as Ray tasks; yields (index, result) as
    each finishes.

    A task asks for one unit of `resource` (none: one CPU), and for `gpus` GPUs (Ray's
    own GPU resource: it runs on a node with a GPU). Ray reruns a task whose
    worker or node died (up to `RETRIES` times). A node that leaves is reported once
    through `notify`; if no live node offers `resource` any more, RlnasError says so
    (results yielded so far are the caller's to keep). `status` is told, as each task
    finishes, how many are done and how many each node did.
    """
    options: dict[str, Any] = {"max_retries": RETRIES, "retry_exceptions": False}
    if resource is not None:
        options["resources"] = {resource: 1}
        options["num_cpus"] = 0
    if gpus:
        if not any(n.get("Resources", {}).get("GPU") for n in ray.nodes() if n.get("Alive")):
            raise RlnasError(
                "no node of the Ray cluster has a GPU; start one on a GPU host with `ray "
                "start --address HEAD_IP:6379`, or train on the CPU (--train-device cpu)"
            )
        options["num_gpus"] = gpus
    remote = ray.remote(_on_node).options(**options)
    pending = {remote.remote(function, *args): i for i, args in enumerate(arguments)}
    alive = {n["NodeID"]: n for n in ray.nodes() if n.get("Alive")}
    work = _Work(len(pending), status)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
        for ref in ready:
            index = pending.pop(ref)
            try:
                node_id, result = ray.get(ref)
            except ray.exceptions.RayError as exc:
                raise RlnasError(f"a task failed on the Ray cluster: {_first_line(exc)}") from None
            work.done(node_id, alive)
            yield index, result
        now = {n["NodeID"]: n for n in ray.nodes() if n.get("Alive")}
        for node_id in set(alive) - set(now):
            node = alive[node_id]
            if notify is not None:
                notify(
                    f"node {node.get('NodeManagerAddress', node_id)} left the cluster; Ray "
                    "retries its tasks on the other nodes"
                )
        alive = now
        if pending and resource is not None and not nodes_with(ray, resource):
            for ref in pending:
                ray.cancel(ref, force=True)
            raise RlnasError(
                f"no live node offers resource '{resource}' any more ({len(pending)} task(s) "
                "left); restart it and rerun the same command to resume"
            )
        if not ready:
            time.sleep(0)


def _on_node(function: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """Runs `function(*args)` in a task; returns the task's node ID with the result."""
    import ray

    return ray.get_runtime_context().get_node_id(), function(*args)


class _Work:
    """The tasks done so far, per node, told to a `Status` as one line."""

    def __init__(self, total: int, status: Status | None):
        self.total = total
        self.status = status
        self.per_node: dict[str, int] = {}
        self._tell()

    def done(self, node_id: str, nodes: dict[str, dict[str, Any]]) -> None:
        node = nodes.get(node_id, {})
        address = str(node.get("NodeManagerAddress", "?"))
        same = [n for n in nodes.values() if n.get("NodeManagerAddress") == address]
        label = address if len(same) == 1 else f"{address}#{node_id[:6]}"
        self.per_node[label] = self.per_node.get(label, 0) + 1
        self._tell()

    def _tell(self) -> None:
        if self.status is None:
            return
        done = sum(self.per_node.values())
        nodes = ", ".join(f"{label} {n}" for label, n in sorted(self.per_node.items()))
        self.status(f"cluster: {done}/{self.total} tasks" + (f" ({nodes})" if nodes else ""))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
