/**
 * auth.ts on its own: parsing the bearer token, mapping a ServiceAccount to its pool,
 * local mode's single token, and KubeAuth's decisions over an in-memory fake of the
 * two reviews (what the API server would answer; the HTTP side is in auth.fake-api.test.ts).
 */
import { bearerToken, KubeAuth, poolOfServiceAccount, ReviewApi, StaticTokenAuth } from '../../controller/auth';

describe('auth helpers', () => {
  test('bearerToken: only "Bearer TOKEN"', () => {
    expect(bearerToken('Bearer abc.def')).toBe('abc.def');
    expect(bearerToken('bearer abc')).toBe('abc');
    for (const h of [undefined, '', 'Basic YWRtaW4=', 'Bearer', 'Bearer a b', 'abc']) expect(bearerToken(h)).toBeUndefined();
  });

  test("poolOfServiceAccount: pool-NAME of the controller's namespace only", () => {
    expect(poolOfServiceAccount('system:serviceaccount:paddock:pool-codex', 'paddock')).toBe('codex');
    expect(poolOfServiceAccount('system:serviceaccount:other:pool-codex', 'paddock')).toBeUndefined();
    expect(poolOfServiceAccount('system:serviceaccount:paddock:paddock-controller', 'paddock')).toBeUndefined();
    expect(poolOfServiceAccount('system:serviceaccount:paddock:pool-', 'paddock')).toBeUndefined();
    expect(poolOfServiceAccount('pool-codex', 'paddock')).toBeUndefined();
  });

  test('StaticTokenAuth: its token only, for everything; a short token is refused', async () => {
    const auth = new StaticTokenAuth('0123456789abcdef0123');
    expect(await auth.user('0123456789abcdef0123')).toEqual({ username: 'paddock:local' });
    expect(await auth.user('0123456789abcdef012')).toBeUndefined();
    expect(await auth.worker('wrong')).toBeUndefined();
    expect(await auth.worker('0123456789abcdef0123')).toEqual({ holder: 'paddock:local' });
    expect(() => new StaticTokenAuth('short')).toThrow(/the token must have at least 16 characters/);
  });
});

describe('KubeAuth over an in-memory fake of TokenReview/SubjectAccessReview', () => {
  const calls: string[] = [];
  let now = 0;
  const reviews: ReviewApi = {
    tokenReview: async (token, audiences) => {
      calls.push(`tr ${token} ${audiences?.join(',') ?? '-'}`);
      if (token === 'person') return { authenticated: true, user: { username: 'alice' } };
      if (token === 'worker') return { authenticated: true, user: { username: 'system:serviceaccount:paddock:pool-codex', extra: { 'authentication.kubernetes.io/pod-name': ['pool-codex-abc'] } }, audiences };
      // The API server answers authenticated for a token of its own audience without echoing ours.
      if (token === 'api-audience') return { authenticated: true, user: { username: 'system:serviceaccount:paddock:pool-codex' }, audiences: ['https://kubernetes.default.svc'] };
      return { authenticated: false, error: 'invalid' };
    },
    subjectAccessReview: async (user, attrs) => {
      calls.push(`sar ${user.username} ${attrs.verb} ${attrs.resource}${attrs.subresource ? '/' + attrs.subresource : ''} ${attrs.name}`);
      return { allowed: user.username === 'alice' && attrs.name === 'codex' };
    },
  };
  const auth = new KubeAuth(reviews, { namespace: 'paddock', workerAudience: 'paddock.dev/worker-api', cacheMs: 1000, now: () => now });

  test('people: TokenReview with the API server audience; access per pool; answers cached for cacheMs', async () => {
    const alice = (await auth.user('person'))!;
    expect(alice.username).toBe('alice');
    expect(await auth.user('nope')).toBeUndefined();
    expect(await auth.allowed(alice, { verb: 'create', pool: 'codex' })).toBe(true);
    expect(await auth.allowed(alice, { verb: 'get', pool: 'claude', subresource: 'results' })).toBe(false);
    await auth.user('person');
    await auth.allowed(alice, { verb: 'create', pool: 'codex' });
    expect(calls.filter((c) => c.startsWith('tr person'))).toEqual(['tr person -']);
    expect(calls).toContain('sar alice get tasks/results claude');
    now += 1001;
    await auth.user('person');
    expect(calls.filter((c) => c.startsWith('tr person'))).toHaveLength(2);
  });

  test("workers: TokenReview for Paddock's audience; the ServiceAccount's pool; the pod is part of the holder", async () => {
    expect(await auth.worker('worker')).toEqual({ pool: 'codex', holder: 'system:serviceaccount:paddock:pool-codex/pool-codex-abc' });
    expect(calls).toContain('tr worker paddock.dev/worker-api');
    expect(await auth.worker('api-audience')).toBeUndefined();
    expect(await auth.worker('person')).toBeUndefined();
  });
});
