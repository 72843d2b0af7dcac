from django.apps import AppConfig


class LibConfig(AppConfig):
    name = "migration_planner.lib"
    label = "mplib"
    verbose_name = "Migration Planner core"

    def ready(self) -> None:
        from . import roles  # noqa: F401  (registers the capability permissions with `rules`)
