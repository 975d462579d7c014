"""Sub-commands of the verify CLI, one module each: ``add_parser(sub)`` and ``run(args)``."""
