"""Built-in few-shot tasks, one JSON Lines file each (see ``llmcli.core.tasks``)."""
