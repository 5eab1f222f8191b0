"""Deployment tooling: AWS sessions, task-definition content, CodeDeploy rollouts."""
