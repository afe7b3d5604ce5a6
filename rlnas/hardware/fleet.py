"""A profiling fleet: layers and whole networks timed on the Ray node that has the device.

A device host joins the cluster with its device as a custom resource
(`ray start --address HEAD_IP:6379 --resources '{"xavier-nx": 1}'`). `rlnas
profile --device xavier-nx --ray-address auto` then sends the missing layers in
batches of `BATCH` as tasks that each need one unit of that resource: a node
offering one unit runs one batch at a time, so timings on a device never
overlap. Each task builds the backend there and times its layers with the same
harness as a local run (`rlnas.hardware.layer_timer.LayerTimer`); the host, backend
version and host fingerprint in the table are those of the node that timed.
The driver appends each returned row to the table's journal, so a driver
killed mid-run resumes like a local profile. A task whose worker or node died
is rerun by Ray; a batch's rows come back only when the whole batch is done,
and each row is keyed by its layer, so none is written twice.

`FleetNetworkTimer` does the same for whole networks (`rlnas measure` and
`rlnas tables calibrate` with `--ray-address`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from rlnas.cluster import Notify, connect, require, run_tasks
from rlnas.hardware.endtoend import NetworkTimer, NetworkTiming
from rlnas.hardware.layer_timer import LayerTimer, ProfileConfig
from rlnas.hardware.timing import TimingConfig
from rlnas.model.arch import Architecture
from rlnas.model.ops import LayerKey

# Layers per task: enough to amortise the task's start (backend, overheads), few
# enough that a lost worker costs little.
BATCH = 8


def _describe(config: ProfileConfig, network_input: tuple[int, ...]) -> dict:
    return LayerTimer(config).describe(network_input)


def _time_batch(config: ProfileConfig, keys: list[LayerKey]) -> list[tuple[dict, float]]:
    timer = LayerTimer(config)
    return [timer.time(key) for key in keys]


class FleetTimer:
    """Times layers on the cluster's node that offers the device (see module docstring).

    Raises:
        RlnasError: Ray is missing, no cluster answers, or no node offers the device.
    """

    def __init__(self, config: ProfileConfig, address: str, notify: Notify | None = None):
        self.config = dataclasses.replace(config, ray_address=None)  # the workers time locally
        self.resource = config.device
        self.notify = notify
        self.ray = connect(address)
        require(self.ray, self.resource, address)

    def describe(self, network_input: tuple[int, ...]) -> dict:
        """The device node's machine, backend and per-call overhead."""
        tasks = run_tasks(
            self.ray, _describe, [(self.config, network_input)], self.resource, self.notify
        )
        return next(tasks)[1]

    def measure(self, keys: list[LayerKey]) -> Iterator[tuple[LayerKey, dict, float]]:
        batches = [keys[i : i + BATCH] for i in range(0, len(keys), BATCH)]
        arguments = [(self.config, batch) for batch in batches]
        for index, results in run_tasks(
            self.ray, _time_batch, arguments, self.resource, self.notify
        ):
            for key, (record, seconds) in zip(batches[index], results, strict=True):
                yield key, record, seconds


def _network_timer_facts(
    device: str, precision: str | None, threads: int, timing: TimingConfig | None
) -> tuple[str, str, str, str]:
    timer = NetworkTimer(device, precision, threads, timing)
    return timer.host, timer.backend_name, timer.backend_version, timer.fingerprint


def _time_network(
    device: str,
    precision: str | None,
    threads: int,
    timing: TimingConfig | None,
    job: tuple[Architecture, int, int, int],
) -> NetworkTiming:
    arch, resolution, batch, passes = job
    return NetworkTimer(device, precision, threads, timing).time(arch, resolution, batch, passes)


class FleetNetworkTimer:
    """`rlnas.hardware.endtoend.NetworkTimer` on the cluster's node that offers the device:
    each network is built, compiled and timed there, one at a time (one unit of the
    device's resource per task), and `host`, the backend and the fingerprint are that
    node's.

    Raises:
        RlnasError: Ray is missing, no cluster answers, or no node offers the device.
    """

    def __init__(
        self,
        device: str,
        precision: str | None,
        threads: int,
        timing: TimingConfig | None,
        address: str,
        notify: Notify | None = None,
    ):
        self.ray = connect(address)
        require(self.ray, device, address)
        self.settings = (device, precision, threads, timing)
        self.notify = notify
        facts = next(run_tasks(self.ray, _network_timer_facts, [self.settings], device, notify))[1]
        self.host, self.backend_name, self.backend_version, self.fingerprint = facts

    def time(
        self, arch: Architecture, resolution: int, batch: int = 1, passes: int = 2
    ) -> NetworkTiming:
        """Builds, compiles and times `arch` on the device's node."""
        job = (arch, resolution, batch, passes)
        tasks = run_tasks(
            self.ray, _time_network, [(*self.settings, job)], self.settings[0], self.notify
        )
        return next(tasks)[1]
