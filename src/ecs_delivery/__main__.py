"""`python -m ecs_delivery`: the same as the `ecs-delivery` command."""

from ecs_delivery.cli import main

raise SystemExit(main())
