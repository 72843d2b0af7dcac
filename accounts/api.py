"""REST endpoints for personal access tokens: the caller's own tokens (list, create, revoke)
and ``POST /api/auth/token/`` (user name and password → a new token)."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from migration_planner.lib.api import UUID_PATTERN
from migration_planner.lib.errors import PermissionDeniedError

from .models import PersonalAccessToken
from .services import token_create, token_revoke

ERROR = OpenApiResponse(description='Refused: {"detail": "...", "field": "..."}')


class AccessTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = PersonalAccessToken
        fields = ["uuid", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class AccessTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="What the token is for.")


class NewTokenSerializer(AccessTokenSerializer):
    token = serializers.CharField(help_text="The token: shown this once, stored only hashed.")

    class Meta(AccessTokenSerializer.Meta):
        fields = [*AccessTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class AccessTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The calling user's personal access tokens. Creating one needs a browser session (or
    ``/api/auth/token/``): a token cannot mint further tokens. DELETE revokes."""

    serializer_class = AccessTokenSerializer
    lookup_field = "uuid"
    lookup_value_regex = UUID_PATTERN
    write_capability = "mp.view"  # anyone with a role manages their own tokens

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return PersonalAccessToken.objects.none()
        return PersonalAccessToken.objects.filter(user=self.request.user)

    @extend_schema(
        request=AccessTokenCreateSerializer,
        responses={201: NewTokenSerializer, 400: ERROR, 403: ERROR},
    )
    def create(self, request: Request) -> Response:
        if isinstance(request.auth, PersonalAccessToken):
            raise PermissionDeniedError(
                "A token cannot create tokens: create it on the API tokens page or with "
                "POST /api/auth/token/."
            )
        body = AccessTokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token, key = token_create(
            user=request.user, name=body.validated_data["name"], request=request
        )
        data = {**AccessTokenSerializer(token).data, "token": key}
        return Response(NewTokenSerializer(data).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, uuid=None) -> Response:
        """Revoke the token (it stops working at once; it stays listed as revoked)."""
        token_revoke(
            token=get_object_or_404(self.get_queryset(), uuid=uuid),
            user=request.user,
            request=request,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class TokenOutSerializer(serializers.Serializer):
    token = serializers.CharField()


LOCKED_OUT = (
    "Too many failed log-ins: this user name is locked for a while after repeated wrong "
    "passwords from your address. Try again later, or ask an admin to unlock it."
)
WRONG_CREDENTIALS = "Wrong user name or password."


class ObtainTokenView(APIView):
    """User name and password → a new personal access token (named after the time); the
    log-in lockout applies. Revoke it on the API tokens page or with DELETE /api/tokens/."""

    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(
        request=LoginSerializer,
        responses={200: TokenOutSerializer, 400: ERROR, 429: ERROR},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        body = LoginSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        # The DRF request, as DRF's own token view passes it.
        user = authenticate(request=request, **body.validated_data)
        if user is None and getattr(request, "axes_locked_out", False):
            # django-axes marks the request it was given; say so as the log-in page does.
            return Response({"detail": LOCKED_OUT}, status=status.HTTP_429_TOO_MANY_REQUESTS)
        if user is None:
            return Response({"detail": WRONG_CREDENTIALS}, status=status.HTTP_400_BAD_REQUEST)
        name = f"API log-in {timezone.now():%Y-%m-%d %H:%M:%S.%f}"
        _, key = token_create(user=user, name=name, request=request)
        return Response({"token": key})
