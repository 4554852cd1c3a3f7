"""Running plans: the scheduler, one case over a transport, and the step actions."""
