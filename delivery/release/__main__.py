"""`python -m delivery.release plan|apply|status|rollback` (see cli.py)."""

from delivery.release.cli import main

raise SystemExit(main())
