import re

from django.urls import path, register_converter

from . import views

app_name = "mappings"
E = "plans/<slug:slug>/entities/<uuid:uuid>/"


class ColumnConverter:
    """A target column name in one URL segment: "~" is written "~~" and "/" is "~s"."""

    regex = "[^/]+"

    def to_python(self, value: str) -> str:
        return re.sub(r"~([~s])", lambda m: "~" if m.group(1) == "~" else "/", value)

    def to_url(self, value: str) -> str:
        return str(value).replace("~", "~~").replace("/", "~s")


register_converter(ColumnConverter, "column")
C = E + "columns/<column:column>/"
L = "plans/<slug:slug>/lookups/<uuid:uuid>/"
urlpatterns = [
    path("plans/", views.plan_list_view, name="plan_list"),
    path("plans/new/", views.plan_create_view, name="plan_create"),
    path("plans/import/", views.plan_import_view, name="plan_import"),
    path("plans/<slug:slug>/edit/", views.plan_edit_view, name="plan_edit"),
    path("plans/<slug:slug>/status/", views.plan_status_view, name="plan_status"),
    path("plans/<slug:slug>/clone/", views.plan_clone_view, name="plan_clone"),
    path("plans/<slug:slug>/archive/", views.plan_archive_view, name="plan_archive"),
    path("plans/<slug:slug>/delete/", views.plan_delete_view, name="plan_delete"),
    path("plans/<slug:slug>/milestones/", views.milestones_view, name="milestones"),
    path("plans/<slug:slug>/milestones/new/", views.milestone_save_view, name="milestone_add"),
    path(
        "plans/<slug:slug>/milestones/<int:pk>/", views.milestone_save_view, name="milestone_edit"
    ),
    path(
        "plans/<slug:slug>/milestones/<int:pk>/delete/",
        views.milestone_delete_view,
        name="milestone_delete",
    ),
    path("plans/<slug:slug>/export.yaml", views.plan_yaml_view, name="plan_yaml"),
    path("plans/<slug:slug>/history/", views.plan_history_view, name="plan_history"),
    path("plans/<slug:slug>/versions/new/", views.version_create_view, name="version_create"),
    path("plans/<slug:slug>/versions/diff/", views.version_diff_view, name="version_diff"),
    path("plans/<slug:slug>/drift/", views.plan_drift_view, name="plan_drift"),
    path("plans/<slug:slug>/drift/rebaseline/", views.plan_rebaseline_view, name="plan_rebaseline"),
    path(
        "plans/<slug:slug>/versions/<int:number>/drift/",
        views.plan_drift_view,
        name="plan_version_drift",
    ),
    path(
        "plans/<slug:slug>/versions/<int:number>/revert/",
        views.version_revert_view,
        name="version_revert",
    ),
    path("plans/<slug:slug>/entities/new/", views.entity_new_view, name="entity_new"),
    path(E, views.entity_editor_view, name="entity_editor"),
    path(E + "settings/", views.entity_settings_view, name="entity_settings"),
    path(E + "delete/", views.entity_delete_view, name="entity_delete"),
    path(E + "grid/", views.entity_grid_view, name="entity_grid"),
    path(E + "preview/", views.preview_view, name="entity_preview"),
    path(E + "profile/", views.entity_profile_view, name="entity_profile"),
    path(E + "profile/apply/", views.suggestion_apply_view, name="suggestion_apply"),
    path(E + "suggest/", views.suggest_view, name="entity_suggest"),
    path(E + "suggest/decide/", views.suggest_decide_view, name="entity_suggest_decide"),
    path(C, views.field_editor_view, name="field_editor"),
    path(C + "save/", views.field_save_view, name="field_save"),
    path(C + "delete/", views.field_delete_view, name="field_delete"),
    path(C + "steps/add/", views.step_add_view, name="step_add"),
    path(C + "steps/form/", views.step_form_view, name="step_form"),
    path(E + "steps/<uuid:step>/save/", views.step_save_view, name="step_save"),
    path(E + "steps/<uuid:step>/move/", views.step_move_view, name="step_move"),
    path(E + "steps/<uuid:step>/delete/", views.step_delete_view, name="step_delete"),
    path("plans/<slug:slug>/lookups/", views.lookup_list_view, name="lookup_list"),
    path(L, views.lookup_detail_view, name="lookup_detail"),
    path(L + "edit/", views.lookup_edit_view, name="lookup_edit"),
    path(L + "delete/", views.lookup_delete_view, name="lookup_delete"),
    path(L + "rows/new/", views.lookup_entry_save_view, name="lookup_entry_add"),
    path(L + "rows/<int:pk>/", views.lookup_entry_save_view, name="lookup_entry_edit"),
    path(L + "rows/<int:pk>/delete/", views.lookup_entry_delete_view, name="lookup_entry_delete"),
    path(L + "upload/", views.lookup_upload_view, name="lookup_upload"),
    path(L + "download/", views.lookup_download_view, name="lookup_download"),
    path("systems/", views.system_list_view, name="system_list"),
    path("systems/new/", views.system_form_view, name="system_create"),
    path("systems/<uuid:uuid>/", views.system_detail_view, name="system_detail"),
    path("systems/<uuid:uuid>/edit/", views.system_form_view, name="system_edit"),
    path("systems/<uuid:uuid>/delete/", views.system_delete_view, name="system_delete"),
    path("systems/<uuid:uuid>/test/", views.system_test_view, name="system_test"),
    path("systems/<uuid:uuid>/schema/", views.system_schema_view, name="system_schema"),
    path("systems/<uuid:uuid>/upload/", views.system_upload_view, name="system_upload"),
    path(
        "systems/<uuid:uuid>/uploads/<uuid:upload>/", views.upload_status_view, name="upload_status"
    ),
    path(
        "systems/<uuid:uuid>/tables/<str:table>/profile/",
        views.table_profile_view,
        name="table_profile",
    ),
]
