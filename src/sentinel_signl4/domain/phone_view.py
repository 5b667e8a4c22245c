"""A Signl drawn the way the SIGNL4 app shows it: the title, the text, then one tile per parameter. Pure.

Used by the demo and the docs to show what a responder sees, and by snapshot tests to review a rendering change
as the phone would show it. Widths are measured in terminal columns (East Asian wide characters and most emoji
take two), so the frame stays aligned for any language.
"""

from __future__ import annotations

import unicodedata

from sentinel_signl4.domain.signl import SignlRequest

__all__ = ["format_phone_view"]


def _width(char: str) -> int:
    if unicodedata.combining(char) or char in "\u200d\ufe0e\ufe0f":
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _text_width(text: str) -> int:
    return sum(_width(char) for char in text)


def _wrap(text: str, width: int) -> list[str]:
    """Wrap at spaces when possible, else mid-word (URLs, hashes); explicit newlines are kept."""
    lines: list[str] = []
    for paragraph in text.split("\n") or [""]:
        line, line_width = "", 0
        for word in paragraph.split(" "):
            piece = word if not line else " " + word
            piece_width = _text_width(piece)
            if line_width + piece_width <= width:
                line, line_width = line + piece, line_width + piece_width
                continue
            if line:
                lines.append(line)
                word = word.lstrip()
            line, line_width = "", 0
            for char in word:  # a word longer than the line is broken where it must be
                if line_width + _width(char) > width:
                    lines.append(line)
                    line, line_width = "", 0
                line, line_width = line + char, line_width + _width(char)
        lines.append(line)
    return lines


def format_phone_view(request: SignlRequest, width: int = 44) -> str:
    """A framed, plain-text picture of ``request`` as the app lists it: title, category and scenario, text,
    then the parameter tiles (``▸ name`` over the value) in the order they were sent.

    ``width`` is the inner width in terminal columns (44 is about a phone in portrait).
    """
    inner = max(16, width)

    def row(text: str = "") -> str:
        return f"│ {text}{' ' * (inner - _text_width(text))} │"

    rule = "─" * (inner + 2)
    out = [f"╭{rule}╮"]
    out += [row(line) for line in _wrap(request.title or "(no title)", inner)]
    badges = [part for part in (request.service, request.alerting_scenario) if part]
    if badges:
        out += [row(line) for line in _wrap(" · ".join(f"[{badge}]" for badge in badges), inner)]
    out.append(f"├{rule}┤")
    out += [row(line) for line in _wrap(request.message or "", inner)]
    for name, value in request.parameters.items():
        out.append(f"├{rule}┤")
        out += [row(line) for line in _wrap(f"▸ {name}", inner)]
        out += [row(line) for line in _wrap(value, inner)]
    out.append(f"╰{rule}╯")
    return "\n".join(out)
