"""Short-lived signed access tokens (JWT, HS256) naming a staff session."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from cdlm.core import clock

ISSUER = "cdlm"
AUDIENCE = "cdlm-api"


class TokenInvalid(ValueError):
    """The token is malformed, forged, of another kind, or expired."""


@dataclass(frozen=True)
class AccessClaims:
    """What a valid access token says."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    expires_at: datetime


def issue_access_token(
    secret: bytes, user_id: uuid.UUID, session_id: uuid.UUID, expires_at: datetime
) -> str:
    """A signed token for ``session_id`` valid until ``expires_at``."""
    import jwt  # PyJWT (and the cryptography it loads) only when a token is handled

    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "typ": "access",
        "sub": str(user_id),
        "sid": str(session_id),
        "iat": int(clock.now().timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def read_access_token(secret: bytes, token: str) -> AccessClaims:
    """The claims of ``token``; raises :class:`TokenInvalid` for any problem.

    Expiry is checked against :func:`cdlm.core.clock.now`, so moved clocks apply to tokens too.
    """
    import jwt

    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "sub", "sid", "iat"], "verify_exp": False},
        )
        if claims.get("typ") != "access":
            raise TokenInvalid("not an access token")
        expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
        user_id = uuid.UUID(str(claims["sub"]))
        session_id = uuid.UUID(str(claims["sid"]))
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise TokenInvalid(type(error).__name__) from None
    if expires_at <= clock.now():
        raise TokenInvalid("expired")
    return AccessClaims(user_id=user_id, session_id=session_id, expires_at=expires_at)
