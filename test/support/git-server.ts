/** The loopback git server (git http-backend behind Node), shared with the runner benchmark. */
export type { GitRequest, GitServer, GitServerOptions } from '../../bench/git-http-server';
export { startGitServer } from '../../bench/git-http-server';
