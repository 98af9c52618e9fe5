"""``python -m trackreid``: the same as the ``trackreid`` command."""

from trackreid.cli.main import main

raise SystemExit(main())
