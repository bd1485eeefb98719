"""The JSON response class of the API: orjson, since FastAPI deprecated its own `ORJSONResponse`."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class OrjsonResponse(JSONResponse):
    """Rendered with orjson: fast, and strict about NaN (the wire format spells it "NaN")."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
