"""Sharded runs: the plan and partition of ``pytest --audit-shard K/N`` (``plan``), merging the shards'
reports (``merge``), and running the shards as Ray tasks (``on_ray``)."""
