"""``make mutate``: a mutation run over the three runtime and infrastructure packages."""
