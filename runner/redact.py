"""Secrets never reach an output: every form smtprun itself gives a secret is replaced by ***."""

from __future__ import annotations

import base64
import dataclasses
from typing import TypeVar

R = TypeVar("R")  # a Reply (runner.smtp.protocol): lines and raw bytes

__all__ = ["MASK", "Redactor"]

MASK = "***"
_MIN_SECRET = 3  # shorter values would mask ordinary text everywhere


class Redactor:
    def __init__(self) -> None:
        self._secrets: list[bytes] = []

    def add(self, secret: str | bytes, encoded: bool = True) -> None:
        """Register a secret and (with `encoded`) its base64 form, as AUTH would send it."""
        raw = secret.encode("utf-8") if isinstance(secret, str) else secret
        if len(raw) < _MIN_SECRET or raw in self._secrets:
            return
        self._secrets.append(raw)
        if encoded:
            self._secrets.append(base64.b64encode(raw))
        self._secrets.sort(key=len, reverse=True)

    def copy(self) -> Redactor:
        """Another redactor hiding the same secrets; what is added to either stays its own."""
        twin = Redactor()
        twin._secrets = list(self._secrets)
        return twin

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def bytes(self, data: bytes) -> bytes:
        for secret in self._secrets:
            if secret in data:
                data = data.replace(secret, MASK.encode())
        return data

    def reply(self, reply: R) -> R:
        """The reply as reports keep it: a server that echoes a secret back does not publish it."""
        return dataclasses.replace(reply, lines=tuple(self.text(line) for line in reply.lines),  # type: ignore
                                   raw=self.bytes(reply.raw))  # type: ignore[attr-defined]

    def text(self, text: str) -> str:
        if not self._secrets:
            return text
        return self.bytes(text.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")
