"""Efficiency techniques, one module per family, found by the registry (base.discover): every
public module here is imported the first time the registry is asked, so a new technique is one new
file. This folder is installed as `effbench.techniques` (pyproject's package-dir), never as a
top-level `techniques` package."""

from .base import (  # noqa: F401
    FAMILIES,
    Context,
    Range,
    Technique,
    TechniqueError,
    build,
    build_all,
    check_fields,
    check_scenario,
    discover,
    family_members,
    get,
    register,
    registry,
)
