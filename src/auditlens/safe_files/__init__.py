"""Files read before anything in them is trusted: YAML as plain data only (``safe_yaml``), and what a
checkpoint directory may hold before it is loaded (``checkpoint_files``)."""
