"""Page tokens: opaque to clients, an offset inside (base64 of a small JSON object)."""

from __future__ import annotations

import base64
import binascii
import json

from loopml.errors import InvalidInput

_NOT_OURS = "page_token is not one this server issued; pass back next_page_token as is"


def encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    """The offset a token stands for; 0 for no token; InvalidInput for anything this server did not issue."""
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(_NOT_OURS) from None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidInput(_NOT_OURS)
    return offset
