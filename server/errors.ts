// One error class and the one table of codes. Every code here is documented in
// docs/errors.md (a unit test fails when one is missing there).

export const ERROR_CODES = {
  // config
  CONFIG_SYNTAX: 'the config file is not valid JSONC',
  CONFIG_SCHEMA: 'a value does not match the schema',
  CONFIG_UNKNOWN_FIELD: 'a field the schema does not know',
  CONFIG_STATIC_MISSING: 'a static route points at a folder that does not exist',
  CONFIG_POOL_MISSING: 'a route names a pool that is not defined',
  CONFIG_APP_FORMAT: 'an app target is not of the form module:callable',
  CONFIG_APP_MODULE_MISSING: 'the module of an app target has no file in the folder',
  CONFIG_DUPLICATE_ROUTE: 'two routes share one path',
  CONFIG_BAD_PORT: 'the listen address or port is not valid',
  CONFIG_BAD_UNIT: 'a size, duration or rate is not understood',
  CONFIG_NO_APP: 'nothing to serve was found in the folder',
  CONFIG_POOL_UNUSED: 'a pool that no route uses',
  CONFIG_NOT_FOUND: 'the config file named does not exist',
  CONFIG_PATH_MISSING: 'a file the config names (envFile, python, tls cert or key) does not exist',
  CONFIG_APPLY_FAILED: 'a new config passed its checks but could not be built; the running config keeps serving',
  CONFIG_BALANCE_UNUSED: 'balance, maxFails or failTimeout on a route that is not a proxy route',
  // serving
  PORT_IN_USE: 'the port to listen on is taken',
  LISTEN_FAILED: 'the server could not listen',
  PYTHON_NOT_FOUND: 'no Python interpreter could be started',
  APP_LOAD_FAILED: 'the app could not be imported',
  WORKER_BOOT_FAILED: 'a worker could not start',
  WORKER_CRASH_LOOP: 'the workers of a pool keep crashing',
  WEBSOCKET_UNSUPPORTED: 'a WebSocket reached a pool that serves a WSGI app (501)',
  // tls and trust
  TLS_FILE_UNREADABLE: 'the certificate or key file "tls" names cannot be read',
  TLS_CERT_INVALID: 'the certificate file is not a PEM certificate',
  TLS_KEY_INVALID: 'the key file is not an unencrypted PEM private key',
  TLS_KEY_MISMATCH: 'the key file does not belong to the certificate',
  TLS_CERT_EXPIRED: 'the certificate has expired or is not valid yet',
  TLS_CA_FAILED: 'the local certificate authority could not be made or read',
  TRUST_FAILED: 'the local certificate authority could not be added to (or removed from) a trust store',
  // control
  CONTROL_UNAUTHORIZED: 'the control channel refused a client',
  CONTROL_BAD_COMMAND: 'a control command was not understood',
  CONTROL_UNKNOWN_POOL: 'a control command named a pool that does not exist',
  CONTROL_UNKNOWN_WORKER: 'a control command named a worker that does not exist',
  CONTROL_NO_SERVER: 'no server runs for the folder',
  CONTROL_COMMAND_FAILED: 'the server could not carry out a control command',
  CONTROL_CONNECTION_FAILED: 'the control channel could not connect or closed before the reply',
  CONTROL_TIMEOUT: 'a control command got no reply in time',
  CONTROL_STATE_FILE: 'the state directory or file of running servers is unsafe or unreadable',
  CONTROL_UNKNOWN_REQUEST: 'a control command named a request the inspector does not hold',
  CONTROL_INSPECTOR_OFF: 'the request inspector is off (the server is not in development)',
  // export and import (warnings: production will do something else, said how)
  EXPORT_FAILED: 'the export could not be written, or the config has errors',
  EXPORT_RELOAD: 'reload on save has no production equivalent',
  EXPORT_DEBUG: 'a debug flag in a pool environment would reach production',
  EXPORT_RATE_LIMIT: 'a rate limit NGINX enforces per NGINX host, or only approximately',
  EXPORT_HEADER_COUNT: 'limits.maxHeaderCount is not enforced for every route in production',
  EXPORT_QUEUE_SIZE: 'limits.queueSize has no NGINX or Gunicorn equivalent',
  EXPORT_NO_TIMEOUT: 'a pool without a timeout gets NGINX\'s longest read timeout',
  EXPORT_INTERFACE: 'interface "auto" could not be told from the code; exported as WSGI',
  EXPORT_PRECOMPRESSED: 'precompressed .br files that NGINX does not serve',
  EXPORT_TLS: 'TLS settings production handles differently',
  EXPORT_WEBSOCKET: 'WebSocket handling that differs in production',
  IMPORT_SYNTAX: 'the nginx.conf to import is not valid NGINX syntax',
  IMPORT_UNSUPPORTED: 'an NGINX directive import cannot carry over',
  // debugging
  DEBUGPY_NOT_FOUND: 'the pool\'s interpreter has no debugpy and no debugpy folder is configured',
  DEBUG_FAILED: 'a worker could not be started under debugpy; the running workers keep serving',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface SourceLocation {
  file: string;
  line: number; // 1-based
  col: number; // 1-based
}

export class ServeStackError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  readonly location?: SourceLocation;

  constructor(code: ErrorCode, message: string, options: { hint?: string; location?: SourceLocation; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'ServeStackError';
    this.code = code;
    this.hint = options.hint;
    this.location = options.location;
  }

  /** `file:line:col: error: message (hint)` — the form the CLI prints. */
  format(): string {
    const where = this.location ? `${this.location.file}:${this.location.line}:${this.location.col}: ` : '';
    const hint = this.hint ? ` — ${this.hint}` : '';
    return `${where}error: ${this.message}${hint} [${this.code}]`;
  }
}
