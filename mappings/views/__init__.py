"""HTML pages of the mapping workbench (one module per area; names re-exported here)."""
# ruff: noqa: F401 -- this module only re-exports the view functions for urls.py

from .editor import (
    entity_delete_view,
    entity_editor_view,
    entity_grid_view,
    entity_new_view,
    entity_settings_view,
    field_delete_view,
    field_editor_view,
    field_save_view,
    preview_view,
    suggest_decide_view,
    suggest_view,
)
from .exports import plan_yaml_view
from .lookups import (
    lookup_delete_view,
    lookup_detail_view,
    lookup_download_view,
    lookup_edit_view,
    lookup_entry_delete_view,
    lookup_entry_save_view,
    lookup_list_view,
    lookup_upload_view,
)
from .plan_lifecycle import (
    plan_archive_view,
    plan_clone_view,
    plan_delete_view,
    plan_import_view,
)
from .plans import (
    milestone_delete_view,
    milestone_save_view,
    milestones_view,
    plan_create_view,
    plan_edit_view,
    plan_list_view,
    plan_status_view,
)
from .profiling import entity_profile_view, suggestion_apply_view, table_profile_view
from .steps import (
    step_add_view,
    step_delete_view,
    step_form_view,
    step_move_view,
    step_save_view,
)
from .systems import (
    system_delete_view,
    system_detail_view,
    system_form_view,
    system_list_view,
    system_schema_view,
    system_test_view,
    system_upload_view,
    upload_status_view,
)
from .versions import (
    plan_drift_view,
    plan_history_view,
    plan_rebaseline_view,
    version_create_view,
    version_diff_view,
    version_revert_view,
)
