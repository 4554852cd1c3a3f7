"""The exit statuses smtprun returns: ExitStatus for every command, and CheckStatus for `smtprun check`, whose
0-3 are the Monitoring Plugins' (Nagios, Icinga) own, which the monitoring system reads."""

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0  # every case passed (or: the plans are valid)
    FAILED = 1  # a case failed: wrong reply, timeout, refused or dropped connection
    USAGE = 2  # a plan is invalid or the command line is wrong; nothing was sent
    ERROR = 3  # smtprun could not do what was asked: a report not written, a server that cannot listen
    INTERRUPTED = 130  # stopped by Ctrl-C; what was gathered is still reported
    OUTPUT_CLOSED = 141  # standard output's reader left (`| head`): stopped quietly, as SIGPIPE ends a tool (128 + 13)


class CheckStatus(IntEnum):
    """The Monitoring Plugins Development Guidelines' return codes: `smtprun check` returns only these."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3  # the check itself could not run: a bad plan or option, an internal error; never the server's fault


def after_reports(status: ExitStatus, written: bool) -> ExitStatus:
    """A run's status once the reports it was asked for are written, or `written` is False.

    A lost report outranks the cases' verdict, failed as well as passed: a job that takes 1 as "cases
    failed, results kept" (`[ $? -le 1 ]`) must not lose them silently. Ctrl-C keeps 130: the person
    who pressed it is there, and the lost report was said on standard error."""
    if not written and status in (ExitStatus.OK, ExitStatus.FAILED):
        return ExitStatus.ERROR
    return status
