"""Names a scenario may refer to, checked when the file is loaded: vendors and operations.

The registries themselves live with their implementations (`harness.vendors`,
`harness.workload.operations`); this module only validates names against them, lazily, so the
scenario model does not import simulators to be defined.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


def _check_vendor(name: str) -> str:
    from harness.vendors import VENDORS

    if name not in VENDORS:
        raise ValueError(f"unknown vendor {name!r} (known: {', '.join(sorted(VENDORS))})")
    return name


def _check_operation(name: str) -> str:
    from harness.workload.operations import OPERATIONS

    if name not in OPERATIONS:
        raise ValueError(f"unknown operation {name!r} (known: {', '.join(sorted(OPERATIONS))})")
    return name


VendorName = Annotated[str, AfterValidator(_check_vendor)]
OperationName = Annotated[str, AfterValidator(_check_operation)]
