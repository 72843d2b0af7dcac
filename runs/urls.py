from django.urls import path

from . import views

app_name = "runs"
R = "runs/<uuid:uuid>/"
urlpatterns = [
    path("runs/", views.run_list_view, name="run_list"),
    path("runs/compare/", views.run_compare_view, name="run_compare"),
    path(R, views.run_detail_view, name="run_detail"),
    path(R + "live/", views.run_live_view, name="run_live"),
    path(R + "pause/", views.run_control_view, {"action": "pause"}, name="run_pause"),
    path(R + "resume/", views.run_control_view, {"action": "resume"}, name="run_resume"),
    path(R + "cancel/", views.run_control_view, {"action": "cancel"}, name="run_cancel"),
    path(R + "stop/", views.run_control_view, {"action": "stop"}, name="run_stop"),
    path(R + "errors/", views.queue_view, name="queue"),
    path(R + "errors/top/", views.queue_top_view, name="queue_top"),
    path(R + "errors/export.csv", views.queue_export_view, name="queue_export"),
    path(R + "rollback/", views.rollback_confirm_view, name="rollback"),
    path(R + "rollback/progress/", views.rollback_progress_view, name="rollback_progress"),
    path(R + "rollback/status/", views.rollback_status_view, name="rollback_status"),
    path("plans/<slug:slug>/launch/", views.run_launch_view, name="launch"),
    path("errors/", views.queue_view, name="queue_all"),
    path("errors/top/", views.queue_top_view, name="queue_top_all"),
    path("errors/export.csv", views.queue_export_view, name="queue_export_all"),
    path("errors/reprocess/", views.queue_reprocess_view, name="queue_reprocess"),
    path("errors/ignore/", views.queue_ignore_view, name="queue_ignore"),
    path("errors/<uuid:uuid>/", views.failed_record_view, name="failed_record"),
    path(
        "errors/<uuid:uuid>/correct/",
        views.failed_record_correct_view,
        name="failed_record_correct",
    ),
    path("notifications/", views.notification_list_view, name="notifications"),
    path("notifications/read/", views.notification_read_view, name="notifications_read"),
]
