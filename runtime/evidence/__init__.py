"""What a run proved: the validate lane's acceptance checks, the triage of how a launch ended, and
the receipt assembled from the plan, the outcome and every rank's status."""
