"""The placeholder syntax of `sut:` values: `{name}` or `{group.name}` is replaced by a lab value, `{{` and `}}`
are literal braces. An unknown name is the file's mistake (exit 2, at the field's line), found when the file is
loaded: `placeholders` lists what a template refers to, `render` fills it in.

Hand-written rather than `str.format`: format would accept `{0}`, `{a[b]}`, `{a!r}` and format specs, which a
scenario file has no use for and which would make "unknown placeholder" hard to say precisely.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")

#: Lab values of each vendor the lab builds, `{<vendor>.<key>}` (through the vendor's proxy, so faults apply).
VENDOR_KEYS = ("base_url", "token_url", "client_id", "client_secret")
#: Other lab values: the run's scratch directory, its seed, the SUT's port and URL.
LAB_KEYS = ("scratch", "seed", "sut.port", "sut.url")


class TemplateError(ValueError):
    """A template that does not parse (a lone brace, an empty or malformed `{...}`)."""


def placeholders(template: str) -> list[str]:
    """The names a template refers to, in order; TemplateError for a malformed one."""
    names: list[str] = []
    for match in _TOKEN.finditer(template):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        name = match.group(1)
        if name is None:
            raise TemplateError(f"a lone {token!r} in {template!r} (write {token * 2} for a literal brace)")
        if not _NAME.match(name):
            raise TemplateError(f"{{{name}}} is not a placeholder name (like {{seed}} or {{medplum.base_url}})")
        names.append(name)
    return names


def render(template: str, values: Mapping[str, str]) -> str:
    """The template with each placeholder replaced; KeyError for a name `values` lacks (validated before)."""

    def one(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        return values[match.group(1)]

    placeholders(template)  # malformed -> TemplateError
    return _TOKEN.sub(one, template)


def known_names(vendors: tuple[str, ...]) -> frozenset[str]:
    """Every lab value a `sut:` template may name, given the vendors the lab can build."""
    return frozenset({*LAB_KEYS, *(f"{v}.{k}" for v in vendors for k in VENDOR_KEYS)})
