"""A Lambda-style handler run N times; after each return the process freezes itself (SIGSTOP) until the
test lets it go on (SIGCONT), as a runtime freezes a process between invocations.

``python tests/shortlived_handler.py N`` with ``ENDPOINT`` in the environment (``SPOOL``: a spool
directory; ``TAG``: a prefix of the user ids; ``DELIVER_TIMEOUT``: seconds). The client's timer is slow
(30 s): only ``deliver_on_return`` can deliver before the freeze.
"""

from __future__ import annotations

import os
import signal
import sys

import instrument
from instrument import EventName, Track, analytics_scope, deliver_on_return


class Events(EventName):
    ORDER_HANDLED = "Order Handled"


class OrderHandled(Track, event=Events.ORDER_HANDLED):
    n: int


instrument.configure(
    "wk-lambda", host=os.environ["ENDPOINT"], flush_interval=30.0, batch_size=1000, spool=os.environ.get("SPOOL")
)
TAG = os.environ.get("TAG", "user")


@deliver_on_return(timeout=float(os.environ.get("DELIVER_TIMEOUT", "10")))
def handler(n: int) -> int:
    with analytics_scope(user_id=f"{TAG}-{n}"):
        instrument.track(OrderHandled(n=n))
    return n


if __name__ == "__main__":
    for n in range(int(sys.argv[1])):
        handler(n)
        os.kill(os.getpid(), signal.SIGSTOP)  # frozen right after the return
