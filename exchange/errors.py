"""Exit codes and the one error hierarchy every module raises.

Each error carries the exit code the script ends with. Scripts catch `DpsError` once, in
their harness, and turn it into one line for the user; the traceback goes to the log file.
Raise the most specific class, always `from` the cause; never the base class itself.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_READY = 3
EXIT_LOCKED = 75


class DpsError(Exception):
    """Base of every error a user can cause; never raised itself."""

    exit_code = EXIT_FAILED


class ConfigError(DpsError):
    """A setting, the config file, or something it names (a key file, a folder) is wrong."""

    exit_code = EXIT_USAGE


class UsageError(DpsError):
    """A command-line argument is wrong (a period, a date)."""

    exit_code = EXIT_USAGE


class DatabaseError(DpsError):
    """IMPACT (or the demo database) could not be reached or queried."""


class TransferError(DpsError):
    """An SFTP connection or transfer failed."""


class FileChangedError(TransferError):
    """A remote file changed while it was fetched."""


class InputError(DpsError):
    """A file or a query result failed its checks (a whole-file fault, a sanity limit)."""


class RunStateError(DpsError):
    """The run records do not allow this run (an exchange in flight, nothing to answer)."""


class ArchivePendingError(RunStateError):
    """The upload a receive answers was never archived: the send must run first."""

    rerun_step = "send"     # the alert's rerun command names the send, not the receive


class DeliveryError(DpsError):
    """A report could not be delivered to one of its targets."""


class LocalFileError(DpsError):
    """A local file or folder could not be written (disk full, size limit, read-only)."""


class MailError(DpsError):
    """The mail server could not be reached or refused the mail."""


class NotReadyError(DpsError):
    """DPS's answer is not complete yet (a --no-wait look): waiting, not failing."""

    exit_code = EXIT_NOT_READY


class WaitExpiredError(NotReadyError):
    """The maximum wait passed without a complete answer: alert, unlike a --no-wait look."""


class LockHeldError(DpsError):
    """Another run of the same step holds the lock."""

    exit_code = EXIT_LOCKED
