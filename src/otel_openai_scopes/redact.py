"""Mask anything credential-shaped in free text before it goes on a span or a log line.

Error messages come from the server, a proxy or an exception and may quote a key; they are
masked here, then truncated, so no path from a response body to exported telemetry carries one.
"""

from __future__ import annotations

import re

MAX_MESSAGE_CHARS = 512
MASK = "***"

_PATTERNS = re.compile(
    r"(?:sk-[A-Za-z0-9_\-*]{3,})"  # OpenAI keys of every kind, also partly starred ones
    r"|(?:(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{4,})"  # bearer tokens
    r"|(?:eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*)"  # JWTs
    r"|(?:\b[A-Za-z0-9_\-]{48,}\b)"  # any long opaque token
)


_KEY_PROVIDED = re.compile(r"(?i)(api[ _-]?key(?: provided)?\s*[:=]\s*)\S+")


def mask_credentials(text: str, *secrets: str | None) -> str:
    """Replace credential-looking tokens (and the given secrets, verbatim or by their first or last 8
    characters, as servers echo them partly starred) by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 8:
            for piece in (secret, secret[:8], secret[-8:]):
                if piece in text:
                    text = text.replace(piece, MASK)
    text = _KEY_PROVIDED.sub(r"\1" + MASK, text)
    return _PATTERNS.sub(MASK, text)


def safe_message(text: object, *secrets: str | None, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Masked, single-line, bounded text for span status descriptions and logs."""
    if not isinstance(text, str):
        text = str(text)
    # Bound the work before masking: never run regexes over an unbounded body.
    text = text[: limit * 4]
    text = mask_credentials(text, *secrets)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text
