from django.urls import path

from . import views

app_name = "runs"
urlpatterns = [
    path("runs/", views.run_list_view, name="run_list"),
    path("runs/<uuid:uuid>/", views.run_detail_view, name="run_detail"),
]
