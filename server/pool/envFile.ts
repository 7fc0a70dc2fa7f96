// Reads a dotenv file for a pool's environment: KEY=VALUE lines, `export ` allowed,
// # comments, single or double quotes (double quotes understand \n). A bad line is
// reported and skipped, never fatal: a typo in .env must not stop the server.
import { readFileSync } from 'node:fs';

export function parseEnvText(text: string, file: string, warn: (message: string) => void): Record<string, string> {
  const env: Record<string, string> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!match) {
      warn(`${file}:${i + 1}:1: warning: not a KEY=VALUE line; it is ignored`);
      return;
    }
    let value = match[2];
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) {
      value = value.slice(1, -1).replace(/\\n/g, '\n').replace(/\\"/g, '"');
    } else if (value.startsWith("'") && value.endsWith("'") && value.length >= 2) {
      value = value.slice(1, -1);
    } else {
      value = value.replace(/\s+#.*$/, '');
    }
    env[match[1]] = value;
  });
  return env;
}

export function readEnvFile(file: string, warn: (message: string) => void): Record<string, string> {
  try {
    return parseEnvText(readFileSync(file, 'utf8'), file, warn);
  } catch (error) {
    warn(`${file}: warning: the env file could not be read (${(error as Error).message}); the pool starts without it`);
    return {};
  }
}
