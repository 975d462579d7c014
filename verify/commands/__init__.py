"""Sub-commands of the verify CLI, one module each with ``run(args)``; their arguments are
in :mod:`verify.commands.parsers` (built in every process, so light), and :mod:`verify.cli`
imports the module of the one command that runs."""
