from django.apps import AppConfig


class ValidationConfig(AppConfig):
    name = "validation"
    verbose_name = "Validation, UAT and audit"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the login audit receivers)
        from .services import hooks_install

        hooks_install()
