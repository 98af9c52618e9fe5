"""Engines run segment jobs: ``local`` (a process pool, the default) or ``ray`` (a Ray cluster)."""
