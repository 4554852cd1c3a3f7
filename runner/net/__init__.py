"""The network edge: a thin asyncio transport, TLS facts, DNS look-ups."""
