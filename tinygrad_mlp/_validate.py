"""Below floor 1 (numpy only, every floor may use it): argument checks shared across the package."""
from __future__ import annotations

import numpy as np


def positive_int(value, name: str, who: str) -> int:
    """``value`` as an int if it is an integer >= 1 (not a bool); otherwise a ValueError that
    names ``who`` (the function or class) and ``name`` (the argument)."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{who}: {name} must be a positive integer; got {value!r}")
    return int(value)
