"""What decides which partitions run: the job, the nightly schedule, the `updatedAt` sensor and its cursor logic."""
