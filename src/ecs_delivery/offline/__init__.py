"""What runs without AWS: the offline plan, the plan diff and the simulated AWS they and the
release demo run against. Never shipped to CodeBuild or Lambda."""
