"""Errors of whole-model validators that name where they are, so the loader can point at a line and a field.

A `model_validator` sees the whole scenario, so pydantic places anything it raises at the model itself
(line 1, no field). Raise these instead and the loader (`harness.scenario.loader`) places each problem at
the item it names: pydantic keeps the raised exception in the error's `ctx["error"]`, and the loader reads
its `path` (relative to the model whose validator raised it) and `message`.

    from harness.scenario.issues import Issues, located

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        issues = Issues()
        if self.duration <= 0:
            issues.add(("duration",), "duration must be positive")
        for i, fault in enumerate(self.faults):
            if fault.at >= self.duration:
                issues.add(("faults", i, "at"), f"faults[{i}] starts at or after the end")
        issues.run(self._vendors_known)      # a helper that raises one `located(...)` (or a plain ValueError)
        issues.raise_if_any()                # one LocatedErrors carrying every problem found, if any
        return self

`located(path, message)` builds one `LocatedError` to raise directly; `Issues` collects several and raises
them together, so `ehrlab validate` lists every problem of a file at once. Both are `ValueError`s: code that
validates a model without the loader still sees a readable message (every problem, joined by "; ").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Path = tuple[str | int, ...]


class LocatedError(ValueError):
    """One problem at `path` (keys and list indexes, relative to the model being validated)."""

    def __init__(self, path: Sequence[str | int], message: str) -> None:
        self.path: Path = tuple(path)
        self.message = message
        super().__init__(message)


class LocatedErrors(ValueError):
    """Several located problems found by one validator, raised together."""

    def __init__(self, errors: Sequence[LocatedError]) -> None:
        self.errors: tuple[LocatedError, ...] = tuple(errors)
        super().__init__("; ".join(e.message for e in self.errors))


def located(path: Sequence[str | int], message: str) -> LocatedError:
    """The error to raise for a problem at `path`, e.g. `raise located(("faults", 2, "at"), "...")`."""
    return LocatedError(path, message)


def unpack(error: BaseException) -> list[LocatedError] | None:
    """The located problems an exception carries (None for any other exception)."""
    if isinstance(error, LocatedErrors):
        return list(error.errors)
    if isinstance(error, LocatedError):
        return [error]
    return None


class Issues:
    """Collects the problems a validator finds, to raise them all at once."""

    def __init__(self) -> None:
        self.errors: list[LocatedError] = []

    def add(self, path: Sequence[str | int], message: str) -> None:
        self.errors.append(LocatedError(path, message))

    def run(self, check: Callable[[], object]) -> None:
        """Call `check`; keep what it raises (located errors where they are, a plain ValueError at the model)."""
        try:
            check()
        except ValueError as exc:
            found = unpack(exc)
            self.errors.extend(found if found is not None else [LocatedError((), str(exc))])

    def raise_if_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise LocatedErrors(self.errors)
