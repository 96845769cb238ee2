"""The work of a rank: the model, FSDP2 parallelization, the training loop and its measurements,
the bench lane, the tracker mirrors, and making a compile-cache seed."""
