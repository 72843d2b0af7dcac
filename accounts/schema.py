"""The token scheme in the OpenAPI document (drf-spectacular extension)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class AccessTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.AccessTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal access token (API tokens page): "
            "`Authorization: Bearer <token>` or `Authorization: Token <token>`.",
        }
