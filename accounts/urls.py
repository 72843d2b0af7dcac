from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("account/tokens/", views.token_list_view, name="tokens"),
    path("account/tokens/<uuid:uuid>/revoke/", views.token_revoke_view, name="token_revoke"),
]
