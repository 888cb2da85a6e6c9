"""Auth0's documented Client Credentials Exchange hook, as a Portcullis plugin.

Auth0's example::

    module.exports = function(client, scope, audience, context, cb) {
      var access_token = {};
      access_token['https://foo.com/claim'] = 'bar';
      access_token.scope = scope;
      access_token.scope.push('extra');
      cb(null, access_token);
    };

Copy this file into plugins/ to enable it.
"""

from oauth import hookimpl


@hookimpl
def customize_client_credentials_token(client, scope, audience, context):
    return {"https://foo.com/claim": "bar", "scope": scope + ["extra"]}
