"""Developer-facing pages of actions: home, action forms, runs, approvals, environments, locks, deployments."""
