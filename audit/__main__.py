from audit.cli import entrypoint

entrypoint()
