"""The SMTP core without I/O: the reply parser, encoders, and how replies are judged."""
