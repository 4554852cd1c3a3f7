"""smtprun: SMTP test plans as files — load, validate, run, report."""

__version__ = "0.1.0"
