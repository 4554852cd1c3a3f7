"""The one set of exit statuses every smtprun command returns."""

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0  # every case passed (or: the plans are valid)
    FAILED = 1  # a case failed: wrong reply, timeout, refused or dropped connection
    USAGE = 2  # a plan is invalid or the command line is wrong; nothing was sent
    ERROR = 3  # smtprun could not do what was asked: a report not written, a server that cannot listen
    INTERRUPTED = 130  # stopped by Ctrl-C; what was gathered is still reported
    OUTPUT_CLOSED = 141  # standard output's reader left (`| head`): stopped quietly, as SIGPIPE ends a tool (128 + 13)
