"""What the alert core refuses, as exceptions a server maps to 4xx in one place.

Exceptions::

    ValueError
     └── AlertError                 anything the alert core refuses
          ├── RuleError             a rule that does not parse or cannot work (path + reason)
          ├── MatcherError          a matcher that does not parse, or names an unknown label
          ├── SilenceError          a silence without an end, ending before it starts, too long
          └── AlertStateError       a lifecycle step that is not allowed from the current state
"""

from __future__ import annotations

__all__ = ["AlertError", "AlertStateError", "MatcherError", "RuleError", "SilenceError"]


class AlertError(ValueError):
    """Base of everything the alert core refuses; the message is written for an operator."""


class RuleError(AlertError):
    """A rule definition that does not parse. ``path`` names the offending field."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)


class MatcherError(AlertError):
    """A label matcher that does not parse or names a label alerts do not carry."""


class SilenceError(AlertError):
    """A silence that cannot be stored as asked."""


class AlertStateError(AlertError):
    """A lifecycle step (acknowledge, resolve, escalate) not allowed in the alert's state."""
