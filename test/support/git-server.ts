/** The loopback git server (git http-backend behind Node), shared with the runner benchmark. */
import * as fs from 'fs';
import * as path from 'path';
import { GitServer, startGitServer } from '../../bench/git-http-server';
import { DemoRepo, makeDemoRepos, makeTmpDir } from './runner-fixtures';

export type { GitRequest, GitServer, GitServerOptions } from '../../bench/git-http-server';
export { startGitServer } from '../../bench/git-http-server';

export interface DemoGitSuite {
  /** The suite's temporary directory (the repositories are in `repos/`). */
  readonly root: string;
  readonly git: GitServer;
  readonly repo: DemoRepo;
}

/**
 * For one test file: the demo repositories (makeDemoRepos) on a TLS git server, made before
 * its tests and closed and removed after them. Read the fields inside tests and hooks.
 */
export function demoGitServerForSuite(prefix: string): DemoGitSuite {
  const suite = {} as { root: string; git: GitServer; repo: DemoRepo };
  beforeAll(async () => {
    suite.root = makeTmpDir(prefix);
    suite.repo = makeDemoRepos(path.join(suite.root, 'repos'));
    suite.git = await startGitServer({ root: path.join(suite.root, 'repos'), tls: true });
  });
  afterAll(async () => {
    await suite.git?.close();
    if (suite.root) fs.rmSync(suite.root, { recursive: true, force: true });
  });
  return suite;
}
