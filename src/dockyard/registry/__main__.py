"""``python -m dockyard.registry serve|gc ...``"""

from dockyard.registry.cli import registry

registry(prog_name="python -m dockyard.registry")
