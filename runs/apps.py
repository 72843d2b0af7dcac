from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs and error queue"

    def ready(self) -> None:
        from .notifications import install

        install()  # in-app and e-mail alerts when a run ends
