"""Names for the JSON values that cross this layer's edges.

A JSON object parsed from the wire, read from a JSON column, or built to be encoded: its
values are whatever JSON holds, so they are checked where they are read, not typed here."""

from typing import Any

JSONObject = dict[str, Any]
