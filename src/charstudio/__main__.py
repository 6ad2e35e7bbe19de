"""``python -m charstudio`` runs the CLI."""

from charstudio.cli import main

main()
