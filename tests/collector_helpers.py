"""The Collector-config checks' helpers in one namespace (``import collector_helpers as h``), from tests/support/
(collector_config, pipelines, promnames, redaction, confmap)."""

from tests.support.collector_config import *  # noqa: F403
from tests.support.confmap import merge  # noqa: F401
from tests.support.pipelines import *  # noqa: F403
from tests.support.pipelines import _ENV_REF  # noqa: F401
from tests.support.promnames import *  # noqa: F403
from tests.support.promnames import _GROUPING  # noqa: F401
from tests.support.redaction import *  # noqa: F403
