"""Labels and matchers: how rules, routes, inhibitions and silences select alerts.

Every alert carries a flat set of string labels. Matchers use Alertmanager's syntax
(``label="value"``, ``label!="value"``, ``label=~"regex"``, ``label!~"regex"``; regexes are
anchored at both ends), and may only name labels that alerts actually carry, so a typo in a
silence fails loudly instead of silently matching nothing (or everything).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from alerts.errors import MatcherError

__all__ = [
    "KNOWN_LABELS",
    "Labels",
    "MatchOp",
    "Matcher",
    "matches_all",
    "parse_matcher",
    "parse_matchers",
]

#: Labels every alert may carry. ``cell`` is the H3 cell as a hex string; ``unit`` the code of
#: the unit whose AOR holds it (or ``joc`` outside every AOR).
KNOWN_LABELS: frozenset[str] = frozenset(
    {
        "rule",
        "type",
        "category",
        "family",
        "severity",
        "sensitivity",
        "cell",
        "parent_cell",
        "unit",
        "component",
        "site_kind",
        "pattern",
    }
)

Labels = Mapping[str, str]


class MatchOp(StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


@dataclass(frozen=True)
class Matcher:
    """One condition on one label. A missing label matches as the empty string (as in
    Alertmanager), so ``site_kind!=""`` means "has a site kind"."""

    label: str
    op: MatchOp
    value: str

    def __post_init__(self) -> None:
        if self.label not in KNOWN_LABELS:
            known = ", ".join(sorted(KNOWN_LABELS))
            raise MatcherError(f"unknown label {self.label!r}; alerts carry: {known}")
        if self.op in (MatchOp.REGEX, MatchOp.NOT_REGEX):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise MatcherError(
                    f"{self.label}{self.op.value}{self.value!r}: not a valid regex ({exc})"
                ) from None

    def matches(self, labels: Labels) -> bool:
        actual = labels.get(self.label, "")
        if self.op is MatchOp.EQUAL:
            return actual == self.value
        if self.op is MatchOp.NOT_EQUAL:
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op is MatchOp.REGEX else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.label}{self.op.value}"{escaped}"'


_MATCHER = re.compile(
    r"""^\s*(?P<label>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*
        (?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^\s"]*))\s*$""",
    re.VERBOSE,
)


def parse_matcher(text: str) -> Matcher:
    """Parse one matcher, e.g. ``category=~"rape|sexual_.*"``.

    >>> parse_matcher('family="abduction"').matches({"family": "abduction"})
    True
    >>> parse_matcher("category!~attack_.*").matches({"category": "attack_on_civilians"})
    False
    """
    if not isinstance(text, str):
        raise MatcherError(f"a matcher is a string like 'family=\"abduction\"', not {text!r}")
    found = _MATCHER.match(text)
    if found is None:
        raise MatcherError(
            f'{text!r} is not a matcher; write label="value", label!="value", '
            'label=~"regex" or label!~"regex"'
        )
    quoted = found.group("quoted")
    value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else found.group("bare") or ""
    return Matcher(found.group("label"), MatchOp(found.group("op")), value)


def parse_matchers(texts: Iterable[str] | str) -> tuple[Matcher, ...]:
    """Parse a list of matchers, or one string of comma-separated ones inside optional braces
    (``{family="abduction", severity="red"}``)."""
    if isinstance(texts, str):
        body = texts.strip()
        if body.startswith("{") and body.endswith("}"):
            body = body[1:-1]
        parts = [p for p in _split_top_level(body) if p.strip()]
    else:
        parts = list(texts)
    return tuple(parse_matcher(p) for p in parts)


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside double quotes."""
    parts, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
            continue
        if char == "\\":
            escaped = True
            current.append(char)
            continue
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def matches_all(matchers: Iterable[Matcher], labels: Labels) -> bool:
    """True when every matcher holds (an empty list matches everything)."""
    return all(m.matches(labels) for m in matchers)
