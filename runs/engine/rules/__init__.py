"""Transformation rule registry: every rule type, its parameter schema and its vectorised function.

The browser form, the YAML format, the API and the plan document all derive from ``REGISTRY``.
Rules take text (a Series, or a DataFrame for ``accepts_frame`` rules) and return text: a pandas
``string[pyarrow]`` Series (``TEXT``) with ``<NA>`` for null. ``transform.transform_frame`` turns
the final values back into ``object`` dtype holding ``str`` / ``None``.

Performance notes: string work runs in pyarrow kernels (RE2). Patterns avoid ``\\s``, ``\\d``,
``\\w``, ``$`` and inline flags, because pandas then falls back to Python's ``re`` row by row.

Layout: one module per family, each registering its rules where it defines them (``RULES``):
``text``, ``dates``, ``numbers`` (casts), ``lookups`` (value maps, references), ``identity``
(uuids, hashes, masks); ``core`` holds what they share (``RuleType``, ``Param``, text helpers);
``registry`` assembles ``REGISTRY`` from the families in ``MENU_ORDER`` and validates params.
"""

from .core import (
    FAILURE_CATEGORIES,
    PARAM_TYPES,
    TEXT,
    Param,
    RuleContext,
    RuleFn,
    RuleParamError,
    RuleType,
    StepResult,
    as_text,
    to_python,
)
from .dates import _parse_formats
from .identity import _uuid_namespace, uuid5_texts
from .registry import MENU_ORDER, REGISTRY, run_step, validate_params

__all__ = [
    "FAILURE_CATEGORIES",
    "MENU_ORDER",
    "PARAM_TYPES",
    "Param",
    "REGISTRY",
    "RuleContext",
    "RuleFn",
    "RuleParamError",
    "RuleType",
    "StepResult",
    "TEXT",
    "_parse_formats",
    "_uuid_namespace",
    "as_text",
    "run_step",
    "to_python",
    "uuid5_texts",
    "validate_params",
]
