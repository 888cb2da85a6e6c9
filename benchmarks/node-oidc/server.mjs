// The reference of `benchmarks/run.py --reference node` (see benchmarks/README.md):
// node-oidc-provider in one Node process, plain HTTP on loopback, its default in-memory
// adapter, issuing the same kind of token as Portcullis in the benchmark: client credentials
// with client_secret_basic, a resource indicator naming the API, a JWT access token signed
// ES256 with one extra claim (Portcullis: one customize_access_token plugin claim).
//
//   node server.mjs  (settings from the environment, all required but BENCH_HOST:)
//   BENCH_PORT, BENCH_HOST (127.0.0.1), BENCH_CLIENT_ID, BENCH_CLIENT_SECRET,
//   BENCH_AUDIENCE, BENCH_SCOPES (space-separated), BENCH_CLAIM_NAME, BENCH_CLAIM_VALUE
//
// Prints "listening <issuer>" once it accepts connections. A benchmark fixture, not a server
// to deploy: the signing key is generated at start and lives in memory only.
import { generateKeyPairSync } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';

function setting(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') {
    console.error(`server.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const host = setting('BENCH_HOST', '127.0.0.1');
const port = Number(setting('BENCH_PORT'));
const audience = setting('BENCH_AUDIENCE');
const scopes = setting('BENCH_SCOPES');
const claim = { [setting('BENCH_CLAIM_NAME')]: setting('BENCH_CLAIM_VALUE') };

function signingKey(options, kid, alg) {
  const { privateKey } = generateKeyPairSync(...options);
  return { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}

const issuer = `http://${host}:${port}`;
const provider = new Provider(issuer, {
  clients: [
    {
      client_id: setting('BENCH_CLIENT_ID'),
      client_secret: setting('BENCH_CLIENT_SECRET'),
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: scopes,
    },
  ],
  jwks: {
    keys: [
      signingKey(['ec', { namedCurve: 'P-256' }], 'bench-es256', 'ES256'),
      // ID tokens default to RS256; nothing here issues one, but the provider wants the key.
      signingKey(['rsa', { modulusLength: 2048 }], 'bench-rs256', 'RS256'),
    ],
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator) => {
        if (resourceIndicator !== audience) throw new errors.InvalidTarget();
        return {
          scope: scopes,
          audience,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
  scopes: scopes.split(' '),
  ttl: { ClientCredentials: 3600 }, // seconds, as Portcullis's access tokens
  extraTokenClaims: () => claim,
});
provider.proxy = false;

const server = provider.listen(port, host, () => {
  console.log(`listening ${issuer}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
