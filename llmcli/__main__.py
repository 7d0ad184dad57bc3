"""``python -m llmcli`` runs the same command line as ``llmpath``."""

from llmcli.cli import main

if __name__ == "__main__":
    main()
