"""RFC 7009 revocation, RFC 7662 introspection, RFC 7591/7592 registration (being written)."""
