"""The plugin system: hook specifications (the public API) and the host that calls them."""
