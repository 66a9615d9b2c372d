"""What every expectation model shares: a report name, a citation, and the ratio type."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _parse_ratio(value: object) -> object:
    """`99%` or `99.5 %` -> 0.99 / 0.995; a number is taken as a ratio in [0, 1]. Anything else (`5s`,
    `500ms`, `high`) is a threshold of the wrong unit and says so."""
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
        except ValueError:
            raise ValueError(f"expected a percentage like 99% or a ratio like 0.99, got {value!r}") from None
    return value


Ratio = Annotated[float, BeforeValidator(_parse_ratio), Field(ge=0.0, le=1.0)]


class CheckBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, description="report name; defaults to check[vendor]")
    source: str | None = Field(default=None, description="runbook citation; defaults to the scenario's first")

    def default_name(self) -> str:
        vendor = getattr(self, "vendor", None)
        check: str = self.check  # type: ignore[attr-defined]
        return f"{check}[{vendor}]" if vendor else check

    def label(self) -> str:
        return self.name or self.default_name()
