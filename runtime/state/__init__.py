"""What a run reads and keeps on disk: the data (checked, staged, sharded per rank), the DCP
checkpoints, and the compile cache (seeded, warm or cold)."""
