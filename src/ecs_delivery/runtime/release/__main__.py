"""`python -m ecs_delivery.runtime.release plan|apply|status|rollback` (see cli.py)."""

from ecs_delivery.runtime.release.cli import main

raise SystemExit(main())
