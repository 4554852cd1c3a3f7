"""Programs built on the engine: the recorder, the embedded server, the pytest plugin."""
