"""The progress bar of long commands, readable in a log file too.

rich draws a bar only on a terminal; written to a file or a pipe (nohup, CI, a job
scheduler) it shows the last state alone, at the end. `Bar` is rich's `Progress` that,
where the console is not a terminal, also prints a plain line (`done/total description`)
at the first update, then at most every `LINE_EVERY_S` seconds, and when the task is done.
"""

from __future__ import annotations

import math
from time import monotonic
from typing import Any

from rich.progress import Progress, TaskID

# Seconds between two plain lines where the console is not a terminal.
LINE_EVERY_S = 30.0


class Bar(Progress):
    """rich's progress bar, with plain lines where the console is not a terminal."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._last_line = -math.inf
        self._finished: set[TaskID] = set()  # tasks whose last line is printed

    def update(self, task_id: TaskID, *args: Any, **kwargs: Any) -> None:
        super().update(task_id, *args, **kwargs)
        if self.console.is_terminal:
            return
        task = next(task for task in self.tasks if task.id == task_id)
        finished = task.total is not None and task.completed >= task.total
        if task_id in self._finished:
            return
        now = monotonic()
        if task.completed and (finished or now - self._last_line >= LINE_EVERY_S):
            self._last_line = now
            if finished:
                self._finished.add(task_id)
            total = "" if task.total is None else f"/{task.total:g}"
            self.console.print(
                f"{task.completed:g}{total} {task.description}".rstrip(),
                markup=False,
                highlight=False,
            )
