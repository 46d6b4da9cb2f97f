"""Small pandas helpers shared by the steps: plain dates, checksums of a query result."""

from __future__ import annotations

import hashlib
from typing import Any


def plain_dates(values: Any) -> Any:
    """A pandas Series of dates (datetime64, time of day cut off; NaT where missing or not a
    real date). Accepts ISO text (SQLite), datetimes (Oracle DATE) or a mix."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz_localize(None).dt.normalize() if values.dt.tz else values.dt.normalize()
    text = values.astype("string").str.strip().str.slice(0, 10)
    return pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")


def frame_checksum(frame: Any) -> str:
    """SHA-256 over the column names and pandas' row hashes (fixed key, so stable across runs):
    the same query result gives the same checksum, for the idempotency check."""
    import pandas as pd

    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
    names = "|".join(map(str, frame.columns)).encode("utf-8")
    return hashlib.sha256(names + rows).hexdigest()


def values_checksum(frame: Any) -> str:
    """frame_checksum of the values whatever dtypes a fetch gave them: numbers as float64, a
    column without a value as nulls. A query's whole-number column is int64 or, when one row
    holds a NULL, float64: so the same rows, read alone or within a wider fetch, have the
    same checksum (the receive's same-inputs key, docs/data-contract.md §6)."""
    import pandas as pd

    columns = {}
    for name in frame.columns:
        values = frame[name]
        if values.isna().all():
            values = pd.Series([None] * len(values), index=frame.index, dtype=object)
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            values = values.astype("float64")
        columns[name] = values
    return frame_checksum(pd.DataFrame(columns, index=frame.index))
