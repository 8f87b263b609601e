"""What a Streamlit app stores, for ``tests/test_dump_load.py``: a module the
``python -m server_state`` subprocess can import (``--import dump_values``), so
that the enum member below decodes there (the codec never imports a module
named by data)."""

from __future__ import annotations

import datetime
import enum
import zoneinfo
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from pyrsistent import pvector


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


def app_values() -> dict[str, Any]:
    """Key -> value, in the order the app first set them."""
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    return {
        "frame": pd.DataFrame(
            {
                "when": pd.date_range("2024-03-30 12:00", periods=4, freq="12h", tz="Europe/Paris"),
                "price": [1.5, 2.25, float("nan"), 4.0],
                "name": ["a", "b", None, "d"],
            }
        ),
        "count": np.int64(2**40),
        "ratio": np.float32(0.1),
        "meeting": datetime.datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=paris),
        "deadline": datetime.datetime(2024, 5, 1, 9, 0, tzinfo=zoneinfo.ZoneInfo("America/New_York")),
        "price": Decimal("19.990"),
        "color": Color.GREEN,
        "tags": {"b", "a"},
        "point": (1, 2.5, "three"),
        "blob": b"\x00\xffdata",
        "big": pvector(range(100_000)),
        "nested": {
            "users": [{"name": "Ada", "roles": ("admin",), "seen": datetime.date(2024, 1, 2)}],
            "n": None,
        },
        "z-first-unicode-é": "ünïcode ✓",
        "a-last": 0,
    }
