"""The client registry: who may ask for what (clients, APIs, client grants) and its cache."""
