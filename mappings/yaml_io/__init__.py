"""Plan YAML export and import (format ``migration-planner/v2``, documented in docs/plan-yaml.md;
``v1`` files still import, their steps read with the rule options they meant).

Export is deterministic (stable key and list order), so export → import → export is
byte-identical. Import reads with ``yaml.safe_load`` only, checks the whole document before it
writes anything, and reports every problem with the line and column of the offending node.
Systems are referenced by name only: connection details and secrets never enter the file.

``nodes`` reads the text (line and column of every problem), ``sections`` checks the whole
document, ``load`` writes it, ``export`` writes a plan out.
"""

from .export import plan_export_dict, plan_export_yaml
from .load import ImportCheck, _replace_checks, plan_import_check, plan_import_yaml
from .nodes import FORMAT, FORMATS, MAX_BYTES

__all__ = [
    "FORMAT",
    "FORMATS",
    "ImportCheck",
    "MAX_BYTES",
    "_replace_checks",
    "plan_export_dict",
    "plan_export_yaml",
    "plan_import_check",
    "plan_import_yaml",
]
