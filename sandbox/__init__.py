"""Stand-ins for the outside world (provider portal, WhatsApp, IMAP, ioTec gateway).

Used by the tests, the demo (`python -m sandbox`) and the benchmarks. Nothing here
imports `webapp` or `jobs`: the sandbox speaks only the outside systems' contracts.
"""
