// The "ServeStack" log output channel: the server's log events (access lines, worker
// output, lifecycle, errors) and the extension's own lines. Python tracebacks are written
// as they are, and a link provider on the output makes their `File "x.py", line N` lines
// open the file at that line (the editor's built-in output links only know paths under a
// workspace folder, and never Python's `, line N` form). Access lines are rate-bounded
// and filtered by logFlood.ts (pure), so a flood never drowns an error; the filter
// commands (only errors, one route, one status class, everything) are registered here.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { LogLine } from '../server/protocol';
import { LogFlood, type LogFilter, type ShownLine, type StatusClass } from './logFlood';

export const LOG_CHANNEL_NAME = 'ServeStack';

const LEVEL_ORDER: Record<LogLine['level'], number> = { debug: 0, info: 1, warn: 2, error: 3 };

export class ServerLog implements vscode.Disposable {
  readonly channel: vscode.LogOutputChannel;
  private readonly disposables: vscode.Disposable[] = [];
  /** Folders of the running servers, to resolve relative paths in tracebacks. */
  readonly roots = new Set<string>();
  readonly flood = new LogFlood();
  private readonly summaryTimer: NodeJS.Timeout;

  constructor() {
    this.channel = vscode.window.createOutputChannel(LOG_CHANNEL_NAME, { log: true });
    this.disposables.push(this.channel);
    this.disposables.push(
      vscode.languages.registerDocumentLinkProvider({ scheme: 'output' }, new TracebackLinkProvider(this.roots)),
    );
    // A flood that stopped still gets its line of counts.
    this.summaryTimer = setInterval(() => this.write(this.flood.tick(Date.now())), 1000);
    this.summaryTimer.unref?.();
    const filter = (id: string, choose: () => Promise<LogFilter | undefined>) =>
      vscode.commands.registerCommand(id, async () => {
        const chosen = await choose();
        if (chosen) this.setFilter(chosen);
      });
    this.disposables.push(
      filter('servestack.logsShowErrors', async () => ({ kind: 'errors' })),
      filter('servestack.logsShowAll', async () => ({ kind: 'all' })),
      filter('servestack.logsFilterRoute', async () => {
        const picked = await vscode.window.showQuickPick([...this.flood.recentPrefixes(), 'Another path…'], { title: 'Show the requests under one path', placeHolder: 'a path prefix, e.g. /api/' });
        const prefix = picked === 'Another path…'
          ? await vscode.window.showInputBox({ title: 'Show the requests under one path', prompt: 'A path prefix, e.g. /api/', validateInput: (v) => (v.startsWith('/') ? undefined : 'start with "/"') })
          : picked;
        return prefix ? { kind: 'route', prefix } : undefined;
      }),
      filter('servestack.logsFilterStatus', async () => {
        const status = await vscode.window.showQuickPick(['2xx', '3xx', '4xx', '5xx'], { title: 'Show the requests of one status class' });
        return status ? { kind: 'status', status: status as StatusClass } : undefined;
      }),
    );
  }

  /** A line from the server's control channel (or its stdout/stderr before that is up). */
  server(line: LogLine, prefix: string): void {
    const threshold = vscode.workspace.getConfiguration('servestack').get<LogLine['level']>('logLevel', 'info');
    if (LEVEL_ORDER[line.level] < (LEVEL_ORDER[threshold] ?? 1)) return;
    this.write(this.flood.push(line, `${prefix}${line.text.replace(/\s+$/, '')}`, Date.now()));
  }

  /** Clears the channel and shows what the filter matches of the recent lines, then the new lines it matches. */
  setFilter(filter: LogFilter): void {
    const replay = this.flood.setFilter(filter, Date.now());
    this.channel.clear();
    this.channel.info(`Showing ${this.flood.describeFilter()} (errors and warnings always show; "ServeStack: Show All Logs" shows everything again)`);
    this.write(replay);
    this.channel.show(true);
  }

  private write(lines: ShownLine[]): void {
    for (const { level, text } of lines) {
      switch (level) {
        case 'debug': this.channel.debug(text); break;
        case 'info': this.channel.info(text); break;
        case 'warn': this.channel.warn(text); break;
        case 'error': this.channel.error(text); break;
      }
    }
  }

  info(text: string): void { this.channel.info(text); }
  warn(text: string): void { this.channel.warn(text); }
  error(text: string): void { this.channel.error(text); }

  show(): void { this.channel.show(true); }

  dispose(): void {
    clearInterval(this.summaryTimer);
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}

/** `File "/abs/app.py", line 12` (Python tracebacks) and `app.py:12` (the server's failures). */
const TRACEBACK_LINE = /File "([^"]+)", line (\d+)/g;

export class TracebackLinkProvider implements vscode.DocumentLinkProvider {
  constructor(private readonly roots: Set<string>) {}

  provideDocumentLinks(document: vscode.TextDocument): vscode.DocumentLink[] {
    const links: vscode.DocumentLink[] = [];
    for (let i = 0; i < document.lineCount; i++) {
      const text = document.lineAt(i).text;
      if (!text.includes('File "')) continue;
      TRACEBACK_LINE.lastIndex = 0;
      for (let m = TRACEBACK_LINE.exec(text); m; m = TRACEBACK_LINE.exec(text)) {
        const file = this.resolve(m[1]);
        if (!file) continue;
        const start = m.index + 'File "'.length;
        const range = new vscode.Range(i, start, i, m.index + m[0].length);
        const link = new vscode.DocumentLink(range, vscode.Uri.file(file).with({ fragment: `L${m[2]}` }));
        link.tooltip = `Open ${path.basename(file)} at line ${m[2]}`;
        links.push(link);
      }
    }
    return links;
  }

  private resolve(file: string): string | undefined {
    if (file.startsWith('<')) return undefined; // <frozen importlib._bootstrap>, <string>
    if (path.isAbsolute(file)) return file;
    const [first] = this.roots;
    return first ? path.join(first, file) : undefined;
  }
}
