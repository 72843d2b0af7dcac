"""Systems, plans and their mappings: what to move, from where, to where, and how.

One module per aggregate; imported here in the order the models were always registered in
(the plan's checks first, the plan version last)."""

# The models register in the order they always did (the plan's checks first): not sorted.
# isort: off
from .checks import UATTestCase, ValidationRule
from .systems import System
from .files import Blob, BlobChunk, FileUpload, StagedFile
from .plans import Milestone, Plan
from .entities import EntityMapping, FieldMapping, RuleStep
from .lookups import LookupEntry, LookupTable
from .versions import PlanVersion
# isort: on

__all__ = [
    "Blob",
    "BlobChunk",
    "EntityMapping",
    "FieldMapping",
    "FileUpload",
    "LookupEntry",
    "LookupTable",
    "Milestone",
    "Plan",
    "PlanVersion",
    "RuleStep",
    "StagedFile",
    "System",
    "UATTestCase",
    "ValidationRule",
]
