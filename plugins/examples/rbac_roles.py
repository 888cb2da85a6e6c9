"""Role-based access control claims, after Supabase's RBAC guide.

Roles live in the user's ``app_metadata`` (set by an admin: ``{"roles": ["admin", "editor"]}``;
users cannot edit app_metadata). Every user access token gets ``user_role`` (the first role, as
in Supabase's guide) and ``user_roles`` (all of them), so an API or a database policy can check
them. The ``roles`` scope lets apps ask to see the roles through UserInfo as well.
"""

from oauth import hookimpl


def _roles(user) -> list[str]:
    metadata = user.app_metadata or {}
    roles = metadata.get("roles") or ([metadata["role"]] if metadata.get("role") else [])
    return [str(role) for role in roles]


@hookimpl
def register_scopes():
    return {"roles": "See your roles in this organisation"}


@hookimpl
def customize_access_token(claims, context):
    if context.user is None:
        return None
    roles = _roles(context.user)
    return {"user_role": roles[0] if roles else None, "user_roles": roles}


@hookimpl
def userinfo_claims(claims, user, scopes):
    if "roles" in scopes:
        return {"roles": _roles(user)}
    return None
