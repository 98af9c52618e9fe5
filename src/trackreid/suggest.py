"""Did-you-mean hints for unknown names (flags, config keys, model names)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""`` if none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(where: str, mapping: Iterable[object], allowed: Iterable[str]) -> None:
    """Refuse the first key of ``mapping`` not in ``allowed``, with a did-you-mean and the allowed keys."""
    from trackreid.errors import InputError

    allowed = list(allowed)
    for key in mapping:
        if key not in allowed:
            raise InputError(f"{where}: unknown key {key!r}{did_you_mean(str(key), allowed)}; allowed: "
                             f"{', '.join(allowed)}")
