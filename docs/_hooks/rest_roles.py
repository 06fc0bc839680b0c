"""Griffe extension for the API reference: the docstrings are written for Python's ``help()``
and use reST roles (``:class:`~execo_engine.sweep.ParamSweeper```, ``:meth:`fail```); the
reference renders them as Markdown, where a role would show as raw text. Each role becomes
inline code of the name it refers to (its last component with ``~``, as Sphinx shows it).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:mod|func|class|meth|attr|data|exc|obj|const):`(~?)([^`]+)`")


def plain(docstring: str) -> str:
    """``docstring`` with each reST role replaced by inline code of its target."""

    def code(match: re.Match[str]) -> str:
        short, target = match.groups()
        return f"`{target.rsplit('.', 1)[-1] if short else target}`"

    return ROLE.sub(code, docstring)


class RestRoles(griffe.Extension):
    """Rewrite the reST roles of every docstring once the object tree is loaded."""

    def on_object(self, *, obj: griffe.Object, **_kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain(obj.docstring.value)
