"""Many cases at once on Dask distributed: a manifest of prompts -> embeddings in the cache, or
labels propagated through each volume, one case per task, on a local cluster or an existing one."""
