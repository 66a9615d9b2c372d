"""The integration's one error root (`integrations/errors.py`): every exception class defined anywhere in
`integrations/` is an `IntegrationError` and is named, under its parent, in the tree that module documents,
so a caller (the lab's runner) can tell a documented failure from a bug by one `except`."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import integrations
from integrations import errors
from integrations.errors import IntegrationError

#: Exceptions that never reach a caller, each with the reason.
INTERNAL = {
    "integrations.fhir._parsing.BadBody": "becomes MalformedResponse inside the connector",
}


def exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(integrations.__path__, "integrations."):
        module = importlib.import_module(module_info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def documented_tree() -> dict[str, int]:
    """Class name -> depth in the docstring's tree."""
    doc = errors.__doc__ or ""
    block = doc.split("```")[1]
    tree: dict[str, int] = {}
    for line in block.strip().splitlines():
        match = re.match(r"^([│ ├└─]*)([A-Z][A-Za-z]+)", line)
        assert match, line
        tree.setdefault(match.group(2), len(match.group(1)) // 4)
    return tree


def test_every_exception_of_the_integration_is_an_integration_error() -> None:
    classes = exception_classes()
    assert len(classes) > 40  # the walk found the packages
    outside = sorted(name for name, cls in classes.items()
                     if not issubclass(cls, IntegrationError) and name not in INTERNAL)
    assert outside == []


def test_every_exception_is_in_the_documented_tree_under_its_parent() -> None:
    tree = documented_tree()
    for name, cls in exception_classes().items():
        if name in INTERNAL:
            continue
        assert cls.__name__ in tree, f"{name} is missing from integrations/errors.py's tree"
        if cls is IntegrationError:
            continue
        parents = [base.__name__ for base in cls.__mro__[1:] if base.__name__ in tree]
        assert parents, name
        assert tree[cls.__name__] == tree[parents[0]] + 1, f"{name} is not drawn under {parents[0]}"


def test_the_tree_names_no_class_that_does_not_exist() -> None:
    names = {cls.__name__ for cls in exception_classes().values()}
    assert set(documented_tree()) <= names
