"""Text fitted for a phone: cleaned of what must not reach one, and cut to hard limits in a way that says so. Pure.

Text from the outside world is cleaned before it reaches a phone: control characters go, line ends are unified,
and bidirectional override characters are removed so that a file called ``invoice\u202efdp.exe`` is shown as
it really is (an ``.exe``), not as the ``…exe.pdf`` its author wanted a responder to see. Cuts are deterministic,
never split a character sequence, and a list cut short says how much was left out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence

__all__ = ["ELLIPSIS", "bounded_join", "clean_text", "clip"]

ELLIPSIS = "…"

# C0/C1 controls except tab and newline, and the bidi embedding/override/isolate characters (spoofing).
_UNWANTED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


def clean_text(value: object) -> str:
    """Text safe and tidy for a phone: NFC, no control or bidi-override characters, ``\\n`` line ends, at most
    one blank line in a row, no surrounding blanks. ``None`` becomes ``""``."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFC", str(value)).replace("\r\n", "\n").replace("\r", "\n")
    text = _UNWANTED.sub("", text)
    text = _TRAILING_SPACE.sub("\n", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


def _dangling(char: str) -> bool:
    # A cut must not leave a combining mark, joiner or variation selector without what follows it.
    return unicodedata.combining(char) > 0 or char in "\u200d\ufe0e\ufe0f" or unicodedata.category(char) == "Cs"


def clip(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its start plus ``…`` (exactly ``limit`` at most).

    Deterministic; never ends on a dangling combining character, and prefers to cut at a word boundary when one
    is near (within the last fifth), so "Suspicious PowerShell comm…" reads as "Suspicious PowerShell…".
    """
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - 1)]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space >= len(cut) * 4 // 5:
        cut = cut[:space]
    cut = cut.rstrip()
    while cut and (_dangling(cut[-1]) or unicodedata.combining(text[len(cut)]) > 0):
        cut = cut[:-1]
    return cut + ELLIPSIS


def bounded_join(values: Sequence[str], *, separator: str, limit: int, noun: Callable[[int], str],
                 max_items: int | None = None) -> str:
    """Whole ``values`` joined while they fit in ``limit`` characters (and ``max_items``), then a line that says
    what was left out ("… and 12 more hosts"). Only a first value that alone does not fit is clipped.

    The count of what is left out is never itself cut off: it is what tells a responder the list is incomplete.
    """
    shown: list[str] = []
    for index, value in enumerate(values):
        if max_items is not None and len(shown) >= max(1, max_items):
            break
        after = len(values) - index - 1
        tail = f"{separator}… and {after} more {noun(after)}" if after else ""
        if len(separator.join([*shown, value])) + len(tail) > limit:
            if not shown:
                shown.append(clip(value, max(1, limit - len(tail))))
            break
        shown.append(value)
    rest = len(values) - len(shown)
    text = separator.join(shown)
    if rest:
        text += f"{separator if shown else ''}… and {rest} more {noun(rest)}"
    return text
