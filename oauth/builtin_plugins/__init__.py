"""Built-in plugins, registered after every user plugin (``trylast``)."""

from . import http_hook

BUILTINS = {"http_hook": http_hook}
