"""The one error hierarchy of Puente.

Every error carries a stable ``reason`` code (used in rejections, HTTP bodies, metrics and tests)
and a message a person can act on. ``diagnostics()`` gives the text to show a human.
"""

from __future__ import annotations


class PuenteError(Exception):
    """Base of every error Puente raises on purpose.

    ``reason`` is a stable, upper-snake-case code; the message says what went wrong and,
    where possible, what to do about it. Messages never carry personal data.
    """

    reason: str = "PUENTE_ERROR"

    def __init__(self, message: str, *, reason: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """A one-paragraph text for a person: the reason code, what happened, what to do."""
        text = f"[{self.reason}] {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def __str__(self) -> str:
        return self.message


class ConfigError(PuenteError):
    """A setting, file or directory Puente needs is missing or invalid."""

    reason = "CONFIG_INVALID"
