"""Mail: the summary and the failure alerts, through the configured SMTP server."""

from __future__ import annotations

import email.message
import logging
import smtplib
import ssl

from exchange.config import MailSettings, secret_from_env
from exchange.errors import ConfigError, MailError

log = logging.getLogger(__name__)

def mail_login(settings: MailSettings) -> tuple[str | None, str | None]:
    """(user name, password) from the environment variables the settings name. ConfigError
    when a named variable is unset, or when a login would cross the network in plain text
    (no STARTTLS) and mail.allow_plain_login does not allow it."""
    username = secret_from_env(settings.username_env, "mail.username_env")
    password = secret_from_env(settings.password_env, "mail.password_env")
    if (username or password) and not settings.starttls and not settings.allow_plain_login:
        raise ConfigError("mail: a login (mail.username_env / mail.password_env) without "
                          "mail.starttls would send the password in plain text; set "
                          "mail.starttls: true, or mail.allow_plain_login: true for a relay "
                          "on a trusted network")
    return username, password


def mail_on(settings: MailSettings) -> bool:
    """Whether mails go out at all: mail enabled and someone to send them to."""
    return bool(settings.enabled and settings.recipients)


def check_mail_ready(settings: MailSettings) -> None:
    """Before a run sends or delivers anything: the mail it will send can be sent (its secrets
    are set, its login is not in plain text). ConfigError, one line, otherwise."""
    if not mail_on(settings):
        return
    try:
        mail_login(settings)
    except ConfigError as exc:
        if "environment variable" not in str(exc):
            raise
        raise ConfigError(f"{exc}; no mail could be sent, so the run stops before it sends "
                          f"or delivers anything") from exc


def send_mail(settings: MailSettings, subject: str, text: str, html: str | None = None,
              attachments: dict[str, bytes] | None = None) -> bool:
    """Send one mail to the configured recipients. Returns False when mail is off.

    Bodies must carry counts and file names only, never a name or a date of birth.
    Attachments go only when the config allows them and every recipient's domain is allowed.
    """
    if not mail_on(settings):
        log.debug("mail is off; nothing sent")
        return False
    message = email.message.EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    if attachments and settings.attachments:
        allowed = {d.lower() for d in settings.allowed_domains}
        domains = {r.rsplit("@", 1)[-1].lower() for r in settings.recipients}
        if not allowed or not domains <= allowed:
            log.warning("attachments left off: a recipient is outside mail.allowed_domains")
        else:
            for name, content in attachments.items():
                message.add_attachment(content, maintype="application",
                                       subtype="octet-stream", filename=name)
    try:
        username, password = mail_login(settings)
    except ConfigError as exc:
        raise MailError(str(exc)) from exc
    try:
        with smtplib.SMTP(settings.host, settings.port,
                          timeout=settings.timeout_seconds) as smtp:
            if settings.starttls:
                ca_file = settings.ca_file   # a private CA, else the system's
                context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
                smtp.starttls(context=context)
            if username and password:
                smtp.login(username, password)
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"mail {settings.host}:{settings.port}: "
                       f"cannot send: {type(exc).__name__}: {exc}") from exc
    log.info("mail sent to %d recipient(s): %s", len(settings.recipients), subject)
    return True

