"""Pure functions from a spec and its context to the desired child objects (plain dicts); no I/O."""
