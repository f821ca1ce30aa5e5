"""Moved to tests/support/ (collector_config, pipelines, promnames, redaction, confmap); these names stay until the
test files move into their tier folders (then this module goes)."""

from tests.support.collector_config import *  # noqa: F403
from tests.support.confmap import merge  # noqa: F401
from tests.support.pipelines import *  # noqa: F403
from tests.support.pipelines import _ENV_REF  # noqa: F401
from tests.support.promnames import *  # noqa: F403
from tests.support.promnames import _GROUPING  # noqa: F401
from tests.support.redaction import *  # noqa: F403
