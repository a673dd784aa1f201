"""The settings as people read them: ``trendcast config`` lines and the README table.

The README's settings table is generated from :class:`~stream_app.settings.Settings`
(``python -m stream_app.settings_doc --write README.md``) and a test checks it
is current, so the documentation cannot drift from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal, get_args, get_origin

from pydantic import SecretStr

from stream_app.settings import Settings

MASK = "**********"
BEGIN = "<!-- settings-table:begin (generated: python -m stream_app.settings_doc --write README.md) -->"
END = "<!-- settings-table:end -->"


def env_name(field: str) -> str:
    """The environment variable of a settings field."""
    return f"TRENDCAST_{field.upper()}"


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else ""
    return str(value)


def effective(settings: Settings) -> dict[str, str]:
    """Every setting as ``TRENDCAST_NAME -> value`` text, secrets masked, unset values empty."""
    return {env_name(name): _text(getattr(settings, name)) for name in type(settings).model_fields}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _choices(annotation: object) -> list[str]:
    """The values of a ``Literal`` annotation (also inside ``X | None``)."""
    if get_origin(annotation) is Literal:
        return [str(a) for a in get_args(annotation)]
    return [c for arg in get_args(annotation) for c in _choices(arg)]


def markdown_table() -> str:
    """The README table: variable, default, meaning, from the fields of :class:`Settings`."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        default = info.get_default(call_default_factory=True)
        shown = "unset" if default is None else f"`{_text(default)}`"
        meaning = info.description or ""
        choices = _choices(info.annotation)
        if choices:
            meaning = (meaning + " " if meaning else "") + "One of " + ", ".join(f"`{c}`" for c in choices) + "."
        rows.append(f"| `{env_name(name)}` | {shown} | {_cell(meaning)} |")
    return "\n".join(rows)


def replace_table(readme: str) -> str:
    """``readme`` with the text between the table markers replaced by :func:`markdown_table`."""
    if BEGIN not in readme or END not in readme:
        raise ValueError("the README has no settings-table markers")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{markdown_table()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    if argv[:1] == ["--write"] and len(argv) == 2:
        path = Path(argv[1])
        path.write_text(replace_table(path.read_text()))
        return 0
    print(markdown_table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
