"""What the e2e modules share on the client side: a JWT for a user and an HTTP reply."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import jwt


def user_token(sub: str, secret: str) -> str:
    """An HS256 JWT for ``sub``, valid for ten minutes."""
    now = int(time.time())
    return jwt.encode({"sub": sub, "iat": now, "exp": now + 600}, secret, algorithm="HS256")


@dataclass
class HttpReply:
    status: int
    headers: dict[str, str]  # lower-case names
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.raw)
