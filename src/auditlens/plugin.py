"""pytest glue for auditlens (options, fixtures, reporting); the core never imports this module."""
