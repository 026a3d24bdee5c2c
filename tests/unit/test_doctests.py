"""Every example in the pure core's docstrings runs and gives what it shows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import alerts
import geo

MODULES = sorted(
    name
    for package in (geo, alerts)
    for _, name, _ in pkgutil.iter_modules(package.__path__, f"{package.__name__}.")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    failures, _attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failures == 0
