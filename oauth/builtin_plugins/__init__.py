"""Built-in plugins, registered after every user plugin (``trylast``)."""

from oauth.builtin_plugins import http_hook

BUILTINS = {"http_hook": http_hook}
