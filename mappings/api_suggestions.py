"""API of the profiling suggestions of an entity's source table: list them with the steps they
would add, preview one on a field, apply it (the same services as the profile page).

Mixed into ``PlanViewSet`` (``mappings.api``); ``RolePermission`` checks ``write_capability``.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from migration_planner.lib.errors import ApplicationError

from . import serializers as s
from .models import EntityMapping
from .services_edit import EDIT
from .services_suggestions import (
    column_profile,
    column_suggestion,
    field_suggestion_apply,
    suggestion_preview,
    suggestion_targets,
)

ENTITY = OpenApiParameter(
    "entity_name", str, OpenApiParameter.PATH, description="The entity's name within the plan."
)
COLUMN = OpenApiParameter("column", str, description="The source column.", required=True)


class StepSpecSerializer(serializers.Serializer):
    rule = serializers.CharField()
    params = serializers.DictField()


class ProfileSuggestionSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Its position: send it back to apply it.")
    label = serializers.CharField(help_text="Send it back too (refused if the data changed).")
    steps = StepSpecSerializer(many=True)
    needs_lookup = serializers.BooleanField(help_text="A value map: name its lookup table.")
    targets = serializers.ListField(
        child=serializers.CharField(),
        help_text="Target columns of the entity fed by the column whose rule chain the "
        "suggestion fits (none already running its step type; a chain holding a value_map or "
        "reference_lookup takes the steps before it, but no second mapping step).",
    )


class SuggestionApplySerializer(serializers.Serializer):
    column = serializers.CharField(help_text="The source column the suggestion is for.")
    target = serializers.CharField(help_text="The target column (field) to add the steps to.")
    index = serializers.IntegerField(min_value=0)
    label = serializers.CharField()
    lookup = serializers.CharField(required=False, allow_blank=True, default="")
    preview = serializers.BooleanField(
        required=False, default=False, help_text="Only show the chain before and after."
    )


class SuggestionPreviewSerializer(serializers.Serializer):
    current = StepSpecSerializer(many=True)
    added = StepSpecSerializer(many=True)
    rows = serializers.ListField(
        child=serializers.DictField(),
        help_text="{value, before, before_error, after, error} per distinct value: the "
        "outcome now and after (a failure as 'rule: message'), changed outcomes first.",
    )


def _specs(steps) -> list[dict]:
    return [{"rule": rule, "params": params} for rule, params in steps]


class SuggestionApplyActions:
    """GET the profiling suggestions of one source column; POST preview or apply one."""

    @extend_schema(
        methods=["GET"],
        parameters=[ENTITY, COLUMN],
        responses={200: ProfileSuggestionSerializer(many=True)},
    )
    @extend_schema(
        methods=["POST"],
        parameters=[ENTITY],
        request=SuggestionApplySerializer,
        responses={
            200: SuggestionPreviewSerializer,
            201: s.RuleStepSerializer(many=True),
            400: OpenApiResponse(description='Refused: {"detail": "...", "field": "..."}'),
        },
    )
    @action(
        detail=True,
        methods=["get", "post"],
        write_capability=EDIT,
        url_path=r"entities/(?P<entity_name>[-a-zA-Z0-9_]+)/profile-suggestions",
    )
    def profile_suggestions(self, request: Request, slug=None, entity_name=None) -> Response:
        """GET ``?column=``: the column's profiling suggestions with the steps each would add;
        POST: preview (200) or apply (201, the steps added) one to a field the column feeds."""
        entity = get_object_or_404(EntityMapping, plan=self.get_object(), name=entity_name)
        if request.method == "GET":
            column = request.query_params.get("column", "")
            if not column:
                raise ApplicationError(
                    "The “column” query parameter is required: the source column to profile.",
                    field="column",
                )
            profile = column_profile(entity=entity, column=column)
            fits = suggestion_targets(entity=entity, column=column, suggestions=profile.suggestions)
            items = [
                {
                    "index": i,
                    "label": x.label,
                    "steps": _specs(x.steps),
                    "needs_lookup": x.needs_lookup,
                    "targets": [t for t, refused in fits[i] if not refused],
                }
                for i, x in enumerate(profile.suggestions)
            ]
            return Response(ProfileSuggestionSerializer(items, many=True).data)
        body = SuggestionApplySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        field = entity.fields.filter(target_column=data["target"]).first()
        if field is None or data["column"] not in field.source_columns:
            raise ApplicationError(
                f"No field of “{entity.name}” maps “{data['target']}” from “{data['column']}”.",
                field="target",
            )
        profile = column_profile(entity=entity, column=data["column"])
        suggestion = column_suggestion(profile=profile, index=data["index"], label=data["label"])
        if data["preview"]:
            seen = suggestion_preview(
                field=field, profile=profile, suggestion=suggestion, lookup=data["lookup"]
            )
            rows = [
                {"value": v, "before": b, "before_error": be, "after": a, "error": e}
                for v, b, be, a, e in seen.rows
            ]
            out = {"current": _specs(seen.current), "added": _specs(seen.added), "rows": rows}
            return Response(SuggestionPreviewSerializer(out).data)
        steps = field_suggestion_apply(
            field=field, user=request.user, suggestion=suggestion, lookup=data["lookup"]
        )
        return Response(s.RuleStepSerializer(steps, many=True).data, status=status.HTTP_201_CREATED)
