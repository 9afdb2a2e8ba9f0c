"""``python -m cdlm`` runs the command-line interface."""

from cdlm.cli import main

main()
