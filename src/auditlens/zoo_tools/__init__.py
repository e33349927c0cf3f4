"""Tooling over the zoo: build several organisms at once (``build_pool``) and check a rebuild of a
shipped organism by behaviour (``verify``). Resolving ``fixture:NAME`` (and building it on first use)
is the zoo's own job, below the loader; this sits above it, as it loads and audits what it built."""
