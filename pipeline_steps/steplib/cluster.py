"""Which instance of a multi-instance processing job this is, and which shards it writes.

SageMaker writes ``/opt/ml/config/resourceconfig.json`` (``current_host``, ``hosts``) into
every processing container; outside SageMaker the file is absent and the step is the only
instance.
"""

from __future__ import annotations

import json
from pathlib import Path

from steplib.errors import DataError

RESOURCE_CONFIG = Path("/opt/ml/config/resourceconfig.json")


def current_host(path: Path = RESOURCE_CONFIG) -> tuple[int, int]:
    """``(index, count)`` of this instance: ``(0, 1)`` when there is no resource config."""
    if not path.exists():
        return 0, 1
    try:
        doc = json.loads(path.read_text())
        hosts = list(doc["hosts"])
        return hosts.index(doc["current_host"]), len(hosts)
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(path, None, f"not a SageMaker resource config ({err})") from err


def shard_names(prefix: str, count: int) -> list[str]:
    """File names of ``count`` shards: ``<prefix>.csv`` alone, else numbered parts."""
    if count == 1:
        return [f"{prefix}.csv"]
    return [f"{prefix}-{i:05d}-of-{count:05d}.csv" for i in range(count)]


def my_shards(count: int, host: tuple[int, int]) -> list[int]:
    """Shard numbers the host ``(index, hosts)`` writes: every ``hosts``-th, from ``index``."""
    index, hosts = host
    return list(range(index, count, hosts))
