"""Built-in plugins, registered after every user plugin (``trylast``)."""

from oauth.plugins.builtin import http_hook

BUILTINS = {"http_hook": http_hook}
