"""Log-ins, log-outs and failed log-ins go to the audit log."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from .audit import audit_record
from .enums import AuditAction


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs) -> None:
    audit_record(action=AuditAction.LOGIN, actor=user, request=request, object_repr=user.username)


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        audit_record(
            action=AuditAction.LOGOUT, actor=user, request=request, object_repr=user.username
        )


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs) -> None:
    name = str(credentials.get("username", ""))[:150]
    audit_record(action=AuditAction.LOGIN_FAILED, request=request, object_repr=name)
