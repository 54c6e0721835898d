"""Delivery from multiprocessing children: fork children that end through ``os._exit`` (multiprocessing and
billiard), forkserver and spawn children, and pool workers terminated by SIGTERM when a ``with Pool()``
block ends (real processes, in a subprocess) deliver every event to a loopback Segment endpoint.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
from process_runner import run_case, wrong_user_messages

from instrument.testing import SegmentEndpoint

pytestmark = pytest.mark.timeout(180)
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("library", ["multiprocessing", "billiard"])
def test_events_of_a_fork_child_ending_through_os_exit_are_delivered(
    library: str, tmp_path: Path, endpoint: SegmentEndpoint
) -> None:
    script = tmp_path / "fork_child.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import LIBRARY as multiprocessing
            import instrument
            from instrument import EventName, Track, analytics_scope

            class Events(EventName):
                CHILD_WORK_DONE = "Child Work Done"

            class ChildWorkDone(Track, event=Events.CHILD_WORK_DONE):
                n: int

            def child(user):
                with analytics_scope(user_id=user):
                    for n in range(5):
                        instrument.track(ChildWorkDone(n=n))
                # returns normally: multiprocessing ends the child with os._exit, atexit never runs

            if __name__ == "__main__":
                instrument.configure("wk-fork", host=sys.argv[1], flush_interval=30.0, batch_size=1000)
                ctx = multiprocessing.get_context("fork")
                procs = [ctx.Process(target=child, args=(f"child-{i}",)) for i in range(2)]
                for p in procs:
                    p.start()
                for p in procs:
                    p.join(30)
                print([p.exitcode for p in procs])
            """
        ).replace("LIBRARY", library)
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(
        [sys.executable, str(script), endpoint.url], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 0]"
    assert endpoint.wait_for(10, timeout=10)
    users = Counter(m["userId"] for m in endpoint.messages)
    assert users == {"child-0": 5, "child-1": 5}
    assert endpoint.unique_message_ids == 10


START_METHODS = ["fork", "forkserver", "spawn"]


@pytest.mark.parametrize("method", START_METHODS)
def test_pool_workers_terminated_at_the_end_of_a_with_pool_block_deliver_every_event(
    method: str, endpoint: SegmentEndpoint
) -> None:
    # `with Pool(2)` ends with terminate(): a SIGTERM to each worker right after the last result.
    done = run_case("with-pool", method, endpoint)
    assert endpoint.wait_for(100, timeout=30), (len(endpoint.messages), done.stderr[-2000:])
    assert endpoint.unique_message_ids == 100
    assert not wrong_user_messages(endpoint)


@pytest.mark.parametrize("method", START_METHODS)
def test_process_children_of_every_start_method_deliver_every_event(method: str, endpoint: SegmentEndpoint) -> None:
    run_case("processes", method, endpoint)
    assert endpoint.wait_for(20, timeout=30)
    assert endpoint.unique_message_ids == 20
    assert not wrong_user_messages(endpoint)
