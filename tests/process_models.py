"""A script run by the process-model tests: work handed to child processes and process pools.

``python tests/process_models.py CASE START_METHOD`` with ``ENDPOINT`` in the environment. Each task
records one ``TaskDone(expected=...)`` whose ``expected`` is the user it must be sent as, so a test can
check that no event is sent under another user. The client is configured at import, so spawn and
forkserver children (which import this module afresh) send to the same endpoint; its timer is slow
(30 s) so that only the exit paths deliver.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import os
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import instrument
from instrument import EventName, PropagatingExecutor, Track, analytics_scope

N_TASKS = 50


class Events(EventName):
    TASK_DONE = "Task Done"


class TaskDone(Track, event=Events.TASK_DONE):
    expected: str


# A generous exit_timeout: the tests run on a loaded machine; the exit paths must not time out there.
instrument.configure("wk-process", host=os.environ["ENDPOINT"], flush_interval=30.0, batch_size=1000, exit_timeout=20.0)


def task_under_bound_scope(user: str) -> str:
    """A task that relies on the scope of whoever submitted it."""
    instrument.track(TaskDone(expected=user))
    return user


def task_with_own_scope(n: int) -> int:
    """A task that binds its own scope."""
    with analytics_scope(user_id=f"task-{n}"):
        instrument.track(TaskDone(expected=f"task-{n}"))
    return n


def child(n: int) -> None:
    """A Process target: four events, then it returns (the child ends through os._exit or sys.exit)."""
    with analytics_scope(user_id=f"child-{n}"):
        for _ in range(4):
            instrument.track(TaskDone(expected=f"child-{n}"))


def under_each_user(submit: Callable[[str], Any]) -> list[Any]:
    """``submit(user)`` once per user, each under that user's scope; what the calls returned, in order."""
    handles = []
    for n in range(1, N_TASKS + 1):
        with analytics_scope(user_id=f"user-{n}"):
            handles.append(submit(f"user-{n}"))
    return handles


def submit_each_under_its_user(executor: object) -> list[str]:
    submit = executor.submit  # type: ignore[attr-defined]
    futures = under_each_user(lambda user: submit(task_under_bound_scope, user))
    return [future.result(timeout=60) for future in futures]


def apply_each_under_its_user(pool: multiprocessing.pool.Pool) -> list[str]:
    results = under_each_user(lambda user: pool.apply_async(task_under_bound_scope, (user,)))
    return [result.get(60) for result in results]


def main(case: str, method: str) -> None:
    context = multiprocessing.get_context(method)
    if case == "plain-executor":
        with ProcessPoolExecutor(4, mp_context=context) as pool:
            submit_each_under_its_user(pool)
    elif case == "propagating-executor":
        with PropagatingExecutor(ProcessPoolExecutor(4, mp_context=context)) as pool:
            submit_each_under_its_user(pool)
    elif case == "switch-executor":
        instrument.propagate_scope()
        with ProcessPoolExecutor(4, mp_context=context) as pool:
            submit_each_under_its_user(pool)
    elif case == "switch-pool":
        instrument.propagate_scope()
        with context.Pool(4) as pool:
            apply_each_under_its_user(pool)
    elif case == "plain-pool":
        with analytics_scope(user_id="pool-creator"):
            pool = context.Pool(4)  # its workers are forked here, under the creator's scope
        with pool:
            apply_each_under_its_user(pool)
    elif case == "with-pool":
        # Leaving the block terminates the workers with SIGTERM, right after the last result came back.
        with context.Pool(2) as pool:
            assert pool.map(task_with_own_scope, range(100)) == list(range(100))
    elif case == "processes":
        processes = [context.Process(target=child, args=(n,)) for n in range(5)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)
        assert [process.exitcode for process in processes] == [0] * 5
    else:
        raise SystemExit(f"unknown case {case}")
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
