"""A Portcullis drop-in plugin: the scopes of the example MCP server (examples/mcp_server/).

Copy this file into Portcullis's plugins folder (``PORTCULLIS_PLUGINS_DIR``, default
``plugins/``) so users can be asked for these scopes at ``/oauth/authorize``.
"""

from oauth import hookimpl


@hookimpl
def register_scopes():
    return {
        "notes:read": "Read your notes",
        "notes:write": "Add notes on your behalf",
    }
