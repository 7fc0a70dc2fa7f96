// A multi-root workspace: each folder is served on its own, the user picks which one;
// the Workers view groups the servers by folder and Stop asks which to stop. Two copies
// of the suite's stdlib-only app, so no framework is needed.
import { cpSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { workerRows } from './workbench.mjs';

export const needsFlask = false;
export const workspaceName = 'multi';

export async function prepare({ root, workspace }) {
  for (const name of ['api', 'site']) cpSync(path.join(root, 'test/extension/fixtures/workspace'), path.join(workspace, name), { recursive: true });
  const workspaceFile = path.join(workspace, 'multi.code-workspace');
  writeFileSync(workspaceFile, JSON.stringify({ folders: [{ path: 'api' }, { path: 'site' }] }, null, 2));
  return { workspaceFile };
}

const pids = workerRows;

async function get(url) {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: response.status, body: await response.text() };
}

export const steps = [
  {
    name: 'the multi-root workspace opens and is trusted',
    async run({ wb }) {
      await wb.ready();
      await wb.trust();
      await wb.waitForStatus(/^Serve$/, 20_000);
    },
  },
  {
    name: "Serve Workspace asks which folder: the user picks 'api'",
    async run({ wb }) {
      await wb.commandPick('ServeStack: Serve Workspace', 'Which folder should ServeStack serve?', 'api');
      await wb.waitForStatus(/^web: 2 workers$/, 30_000);
    },
  },
  {
    name: "serving 'site' too: the Workers view groups both servers by folder",
    async run({ wb, state }) {
      await wb.commandPick('ServeStack: Serve Workspace', 'Which folder should ServeStack serve?', 'site');
      await wb.focusView('Workers');
      // The folder row gets its URL when that server reports its address, which may come a
      // moment after its workers are up: wait for both (CI once saw "site" a beat early).
      const folderRows = (r) => r.filter((row) => /^(api|site) http:\/\/127\.0\.0\.1:\d+\/$/.test(row));
      const rows = await wb.waitForRows('Workers', (r) => pids(r).length === 4 && pids(r).every((p) => /idle|busy/.test(p)) && folderRows(r).length === 2, 'four workers in two folders, each folder with its URL', 30_000);
      const folders = folderRows(rows);
      state.urls = Object.fromEntries(folders.map((r) => r.split(' ')));
      await wb.waitForStatus(/· web: 2 workers$/, 10_000);
    },
  },
  {
    name: 'each folder answers on its own port',
    async run({ state }) {
      if (state.urls.api === state.urls.site) throw new Error(`both on ${state.urls.api}`);
      for (const url of Object.values(state.urls)) {
        const page = await get(url);
        if (page.status !== 200 || !/^hello from worker \d+/.test(page.body)) throw new Error(`${url} answered ${page.status}: ${page.body}`);
      }
    },
  },
  {
    name: "Stop asks which server: stopping 'site' leaves 'api' serving",
    async run({ wb, state }) {
      await wb.commandPick('ServeStack: Stop', 'Which server?', 'site');
      await wb.waitForRows('Workers', (r) => pids(r).length === 2 && !r.some((x) => x.startsWith('site ')), "only api's workers", 15_000);
      const page = await get(state.urls.api);
      if (page.status !== 200) throw new Error(`api answered ${page.status} after site stopped`);
    },
  },
  {
    name: 'Stop with one server left stops it without asking',
    async run({ wb }) {
      await wb.command('ServeStack: Stop');
      await wb.waitForStatus(/^Serve$/, 15_000);
      await wb.waitForRows('Workers', (r) => r.length === 0, 'an empty Workers view');
    },
  },
];
