/**
 * The real agent CLIs installed under test/agents (`npm ci --prefix test/agents`), and the
 * measured recipes to run each one unattended against the loopback mock model server
 * (test/support/mock-model-server.ts). Facts and gotchas: test/agents/README.md.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export type AgentCliName = 'codex' | 'claude' | 'gemini' | 'opencode' | 'copilot';

export const AGENT_CLI_NAMES: readonly AgentCliName[] = ['codex', 'claude', 'gemini', 'opencode', 'copilot'];

/** test/agents: its own package.json + package-lock.json, outside the root package. */
export const AGENTS_DIR = path.resolve(__dirname, '..', 'agents');
export const INSTALL_HINT = 'run `npm ci --prefix test/agents` from the repository root';

const NODE_MODULES = path.join(AGENTS_DIR, 'node_modules');

/** npm package whose version test/agents/package.json pins, and where its executable lands. */
const PACKAGES: Record<AgentCliName, { pkg: string; bins: () => string[] }> = {
  // Node launcher that execs the native binary of @openai/codex-<platform>: needs `node` on PATH.
  codex: { pkg: '@openai/codex', bins: () => [path.join(NODE_MODULES, '.bin', 'codex')] },
  // Native binary; the package's postinstall copies it over a placeholder bin/claude.exe.
  claude: { pkg: '@anthropic-ai/claude-code', bins: () => [path.join(NODE_MODULES, '.bin', 'claude')] },
  // Node script (bundle/gemini.js): needs `node` (>= 20) on PATH.
  gemini: { pkg: '@google/gemini-cli', bins: () => [path.join(NODE_MODULES, '.bin', 'gemini')] },
  // The platform package itself (no .bin link): the opencode-ai wrapper cannot be locked for
  // `npm ci` from this registry (10 of its 12 platform packages are missing), see README.
  opencode: {
    pkg: opencodePlatformPackages()[0],
    bins: () => opencodePlatformPackages().map((p) => path.join(NODE_MODULES, p, 'bin', 'opencode')),
  },
  // Node loader (npm-loader.js) that execs @github/copilot-<platform>: needs `node` on PATH.
  copilot: { pkg: '@github/copilot', bins: () => [path.join(NODE_MODULES, '.bin', 'copilot')] },
};

function opencodePlatformPackages(): string[] {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const base = `opencode-${platform}-${process.arch}`;
  return [base, `${base}-baseline`, `${base}-musl`, `${base}-baseline-musl`];
}

export interface AgentCliStatus {
  readonly name: AgentCliName;
  readonly packageName: string;
  /** Version pinned in test/agents/package.json (undefined if not listed there). */
  readonly pinnedVersion?: string;
  /** Version found in node_modules (undefined if not installed). */
  readonly installedVersion?: string;
  /** Executable to spawn (first existing candidate), or the expected path when missing. */
  readonly bin: string;
  /** True when the executable exists and the installed version is the pinned one. */
  readonly installed: boolean;
  /** Why `installed` is false, with the fix. */
  readonly problem?: string;
}

function readJson(file: string): any {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Where a CLI is and whether it is installed at the pinned version. Never throws. */
export function agentCliStatus(name: AgentCliName): AgentCliStatus {
  const { pkg, bins } = PACKAGES[name];
  const manifest = readJson(path.join(AGENTS_DIR, 'package.json')) ?? {};
  const pinnedVersion: string | undefined = manifest.dependencies?.[pkg] ?? manifest.optionalDependencies?.[pkg];
  const installedVersion: string | undefined = readJson(path.join(NODE_MODULES, pkg, 'package.json'))?.version;
  const candidates = bins();
  const bin = candidates.find((b) => fs.existsSync(b)) ?? candidates[0];
  let problem: string | undefined;
  if (!fs.existsSync(bin)) {
    problem = `${name} is not installed (no ${path.relative(process.cwd(), bin)}): ${INSTALL_HINT}`;
  } else if (pinnedVersion && installedVersion !== pinnedVersion) {
    problem = `${name}: ${pkg}@${installedVersion} is installed but test/agents pins ${pinnedVersion}: ${INSTALL_HINT}`;
  } else if (name === 'claude' && fs.statSync(bin).size < 1024 * 1024) {
    problem = `claude: ${bin} is still the placeholder (its postinstall did not run, e.g. --ignore-scripts): ${INSTALL_HINT} without --ignore-scripts`;
  }
  return { name, packageName: pkg, pinnedVersion, installedVersion, bin, installed: !problem, problem };
}

/** The CLI's executable; throws the install hint when it is missing (fail, don't skip). */
export function requireAgentCli(name: AgentCliName): string {
  const status = agentCliStatus(name);
  if (!status.installed) throw new Error(status.problem);
  return status.bin;
}

/** PATH for the agent: this node first (codex, gemini and copilot are node launchers), then the system. */
export function agentPath(): string {
  return [path.dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(path.delimiter);
}

export interface AgentRunDirs {
  /** The agent's working directory (a fresh, empty temp dir). */
  readonly workspace: string;
  /** The agent's HOME (a fresh, empty temp dir). */
  readonly home: string;
  /** Removes both. */
  cleanup(): void;
}

export function makeAgentRunDirs(prefix = 'paddock-agent-'): AgentRunDirs {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const workspace = path.join(root, 'workspace');
  const home = path.join(root, 'home');
  fs.mkdirSync(workspace);
  fs.mkdirSync(home);
  return { workspace, home, cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}

export interface AgentInvocation {
  readonly command: string;
  readonly args: string[];
  /** The complete environment (nothing is inherited). */
  readonly env: Record<string, string>;
  /** Config files written (absolute paths), for the record. */
  readonly files: string[];
}

export interface MockInvocationOptions {
  /** Mock server base URL, e.g. `http://127.0.0.1:PORT` (no /v1). */
  readonly mockUrl: string;
  readonly dirs: AgentRunDirs;
  readonly prompt: string;
  /** @default 'mock-model' */
  readonly model?: string;
}

const MOCK_KEY = 'mock-key-not-secret';

function write(file: string, content: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return file;
}

/**
 * Writes the CLI's config for the mock provider the way a user would in production (a
 * config file under HOME plus an API-key env var) and returns the measured argv + env.
 */
export function mockInvocation(name: AgentCliName, opts: MockInvocationOptions): AgentInvocation {
  const { mockUrl, dirs, prompt } = opts;
  const model = opts.model ?? 'mock-model';
  const base = { PATH: agentPath(), HOME: dirs.home };
  const command = requireAgentCli(name);
  switch (name) {
    case 'codex': {
      const codexHome = path.join(dirs.home, '.codex');
      const config = write(path.join(codexHome, 'config.toml'), [
        `model = "${model}"`,
        'model_provider = "mock"',
        // bubblewrap sandbox needs user namespaces (absent in pods); the pod is the sandbox.
        'sandbox_mode = "danger-full-access"',
        'approval_policy = "never"',
        '',
        '[model_providers.mock]',
        'name = "Mock"', // required
        `base_url = "${mockUrl}/v1"`,
        'env_key = "MOCK_API_KEY"',
        'wire_api = "responses"',
        '',
        '[features]',
        'plugins = false # else it looks up github.com, api.github.com, chatgpt.com',
        '',
        '[analytics]',
        'enabled = false # else it looks up ab.chatgpt.com',
        '',
      ].join('\n'));
      return {
        command,
        args: ['exec', '--skip-git-repo-check', '--ephemeral', prompt],
        env: { ...base, CODEX_HOME: codexHome, MOCK_API_KEY: MOCK_KEY },
        files: [config],
      };
    }
    case 'claude': {
      const settings = write(path.join(dirs.home, '.claude', 'settings.json'), JSON.stringify({
        env: { ANTHROPIC_BASE_URL: mockUrl, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1' },
        permissions: { defaultMode: 'bypassPermissions' },
      }, null, 2));
      const env: Record<string, string> = { ...base, ANTHROPIC_API_KEY: MOCK_KEY };
      // As root, bypassPermissions (flag or settings) is refused unless IS_SANDBOX=1.
      if (process.getuid?.() === 0) env.IS_SANDBOX = '1';
      return { command, args: ['-p', prompt, '--output-format', 'json', '--model', model], env, files: [settings] };
    }
    case 'gemini': {
      const settings = write(path.join(dirs.home, '.gemini', 'settings.json'), JSON.stringify({
        security: { auth: { selectedType: 'gemini-api-key' }, folderTrust: { enabled: false } },
        privacy: { usageStatisticsEnabled: false },
        telemetry: { enabled: false },
        general: { enableAutoUpdate: false, enableAutoUpdateNotification: false },
      }, null, 2));
      // No -m: the default model router makes a `:generateContent` side call first, which
      // exercises that path of the mock. A preset that passes -m skips it.
      return {
        command,
        args: ['-p', prompt, '--yolo', '--output-format', 'json'],
        env: { ...base, GEMINI_API_KEY: MOCK_KEY, GOOGLE_GEMINI_BASE_URL: mockUrl },
        files: [settings],
      };
    }
    case 'opencode': {
      const config = write(path.join(dirs.home, '.config', 'opencode', 'opencode.json'), JSON.stringify({
        $schema: 'https://opencode.ai/config.json',
        provider: {
          mock: {
            npm: '@ai-sdk/openai-compatible', // bundled in the binary: nothing is installed
            name: 'Mock',
            options: { baseURL: `${mockUrl}/v1`, apiKey: '{env:MOCK_API_KEY}' },
            models: { [model]: { name: model } },
          },
        },
        model: `mock/${model}`,
        permission: { bash: 'allow', edit: 'allow' },
        autoupdate: false,
        share: 'disabled',
      }, null, 2));
      return {
        command,
        args: ['run', prompt],
        env: { ...base, MOCK_API_KEY: MOCK_KEY, OPENCODE_DISABLE_MODELS_FETCH: '1', OPENCODE_DISABLE_AUTOUPDATE: '1' },
        files: [config],
      };
    }
    case 'copilot': {
      // BYOK is configured by env only; COPILOT_OFFLINE skips GitHub auth, telemetry, updates.
      return {
        command,
        args: ['-p', prompt, '--allow-all-tools', '--silent', '--model', model],
        env: {
          ...base,
          COPILOT_OFFLINE: 'true',
          COPILOT_PROVIDER_BASE_URL: `${mockUrl}/v1`,
          COPILOT_PROVIDER_API_KEY: MOCK_KEY,
          COPILOT_AUTO_UPDATE: 'false',
        },
        files: [],
      };
    }
  }
}

export interface AgentRunResult {
  /** Exit code, or null when killed by a signal. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
  readonly timedOut: boolean;
}

/**
 * Spawns the CLI like the runner will: argv array (no shell), stdin /dev/null, explicit env,
 * own process group (killed whole on timeout).
 */
export function runAgentCli(
  inv: AgentInvocation,
  opts: { cwd: string; timeoutMs: number },
): Promise<AgentRunResult> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(inv.command, inv.args, {
      cwd: opts.cwd,
      env: inv.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, opts.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      try {
        process.kill(-child.pid!, 'SIGKILL'); // stragglers the agent left in its group
      } catch {
        // none left
      }
      resolve({ code, signal, stdout, stderr, durationMs: Date.now() - started, timedOut });
    });
  });
}
