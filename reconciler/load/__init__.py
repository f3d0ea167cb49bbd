"""Loading declared state: YAML files in, a checked, typed ``DesiredState`` (or diagnostics) out."""

from reconciler.load.loader import DEFAULT_MAX_FILE_BYTES, LoadResult, load_desired_state
from reconciler.load.recipients import iter_recipients

__all__ = ["DEFAULT_MAX_FILE_BYTES", "LoadResult", "iter_recipients", "load_desired_state"]
