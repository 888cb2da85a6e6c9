"""The OAuth 2.1 / OpenID Connect protocol: the Authlib server, its grants, the authorization request, revocation, introspection, registration and error responses."""
