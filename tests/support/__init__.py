"""What the test suites share: plan readers, the moto world, simulators and shapes."""
