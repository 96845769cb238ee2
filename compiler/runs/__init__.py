"""Run bookkeeping: run ids, the per-run manifest, the backends that launch and poll runs (local,
modal), the progress display and the receipt views."""
