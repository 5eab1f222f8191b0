"""Pulumi components of ecs-delivery; each module holds one job."""
