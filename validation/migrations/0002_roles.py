"""Create the five role groups with their model permissions (admin, and the basis for the API)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

APPS = ("mappings", "runs", "validation")
MAPPING_MODELS = (
    "system", "plan", "milestone", "entitymapping", "fieldmapping", "rulestep",
    "lookuptable", "lookupentry",
)


def _codenames(Permission, app_label, prefixes, models=None):
    qs = Permission.objects.filter(content_type__app_label=app_label)
    return [
        p for p in qs
        if p.codename.split("_", 1)[0] in prefixes
        and (models is None or p.codename.split("_", 1)[1] in models)
    ]


def create_roles(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = [p for app in APPS for p in _codenames(Permission, app, {"view"})]
    grants = {
        "viewer": view,
        "analyst": view
        + _codenames(Permission, "mappings", {"add", "change", "delete"}, MAPPING_MODELS)
        + _codenames(Permission, "mappings", {"add"}, {"planversion"})
        + _codenames(Permission, "runs", {"add", "change"}, {"run", "failedrecord"})
        + _codenames(Permission, "validation", {"add", "change", "delete"},
                     {"validationrule", "uattestcase"}),
        "approver": view
        + _codenames(Permission, "validation", {"add", "change"}, {"uatresult", "signoff"}),
        "operator": view + _codenames(Permission, "runs", {"add", "change"},
                                      {"run", "batch", "rollback", "failedrecord"}),
        "admin": list(Permission.objects.filter(content_type__app_label__in=APPS + ("auth",))),
    }
    for name, perms in grants.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(perms)


def drop_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(
        name__in=["viewer", "analyst", "approver", "operator", "admin"]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("mappings", "0001_initial"),
        ("runs", "0001_initial"),
        ("validation", "0001_initial"),
    ]
    operations = [migrations.RunPython(create_roles, drop_roles)]
