"""The Locust environment both processes of the distributed collector share (master and
worker): its users are `harness.locust_shape.symbol_user()` (one subscribed symbol each)."""

from __future__ import annotations

import logging
import sys
from typing import Any

from harness.locust_shape import symbol_user


def locust_environment(log_name: str) -> Any:
    """The `locust.env.Environment` of a distributed-collector process (master or worker),
    its users `symbol_user()`. Imports locust, which monkey-patches the process with gevent:
    call it first thing in such a process. Our command line is not Locust's (it would parse
    it), and warnings go to stderr prefixed with `log_name`."""
    sys.argv = sys.argv[:1]
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format=f"{log_name} %(levelname)s %(name)s: %(message)s",
    )
    from locust.env import Environment

    return Environment(user_classes=[symbol_user()], host="feed_sim")
