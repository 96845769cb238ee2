"""One rank's own state: its status file and the drills fired on entering a stage, the process
group, where it runs (provenance), and the `LaneOutcome` a lane fills as it goes."""
