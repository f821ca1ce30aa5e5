"""Moved to :mod:`tests.support.stack`; this name re-exports it for tests and benchmarks written against it on other
branches (new code: ``from tests.support import stack``)."""

from tests.support.confmap import merge  # noqa: F401
from tests.support.stack import *  # noqa: F403
from tests.support.stack import __all__  # noqa: F401
from tests.support.stack.collector import Sink  # noqa: F401
from tests.support.stack.jaeger import DurableJaeger  # noqa: F401
from tests.support.stack.procs import Managed as _Managed  # noqa: F401
from tests.support.stack.procs import spawn as _spawn  # noqa: F401
from tests.support.stack.procs import wait_healthy as _wait_healthy  # noqa: F401
