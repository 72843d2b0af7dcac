from django.urls import path

from . import views

app_name = "validation"
urlpatterns = [
    path("plans/<slug:slug>/validation/", views.validation_page, name="rules"),
    path("plans/<slug:slug>/validation/rules/", views.rule_save_view, name="rule_save"),
    path(
        "plans/<slug:slug>/validation/rules/<uuid:uuid>/delete/",
        views.rule_delete_view,
        name="rule_delete",
    ),
    path("plans/<slug:slug>/validation/run/", views.prevalidate_view, name="prevalidate"),
    path("runs/<uuid:uuid>/report/", views.report_view, name="report"),
    path("runs/<uuid:uuid>/report/reconcile/", views.report_reconcile_view, name="reconcile"),
    path(
        "runs/<uuid:uuid>/report/export/<str:fmt>/", views.report_export_view, name="report_export"
    ),
    path("plans/<slug:slug>/uat/", views.uat_page, name="uat"),
    path("plans/<slug:slug>/uat/cases/", views.uat_case_save_view, name="uat_case_save"),
    path(
        "plans/<slug:slug>/uat/cases/<uuid:uuid>/delete/",
        views.uat_case_delete_view,
        name="uat_case_delete",
    ),
    path(
        "plans/<slug:slug>/uat/cases/<uuid:uuid>/result/", views.uat_result_view, name="uat_result"
    ),
    path("plans/<slug:slug>/signoff/", views.signoff_page, name="signoff"),
    path("plans/<slug:slug>/signoff/decide/", views.signoff_decide_view, name="signoff_decide"),
    path("plans/<slug:slug>/cutover/", views.cutover_page, name="cutover"),
    path("plans/<slug:slug>/cutover/<str:step>/", views.cutover_step_view, name="cutover_step"),
    path("audit/", views.audit_page, name="audit"),
]
