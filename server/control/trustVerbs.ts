// `servestack trust` and `servestack untrust`: say what will change and why, then add the
// local CA to (or remove it from) the stores that change without surprise (the browsers'
// NSS databases) and, only with --system, the system store. The editor's "Trust Local
// HTTPS" runs the same code (extension/trust.ts).
import { parseArgs } from 'node:util';
import { ServeStackError } from '../errors';
import { caDir, existingCaCertFile, loadOrCreateCa } from '../tls/caStore';
import { addToNssStores, changeSystemStore, removeFromNssStores, type CaIdentity, type StoreOutcome } from '../tls/trustStores';

export const TRUST_USAGE = `servestack trust [--system]            trust ServeStack's local HTTPS certificates in Chromium and Firefox (--system: the system store too)
  servestack untrust [--system]          remove that trust again`;

type Out = (text: string) => void;

/** What `trust` says before it changes anything. */
export function trustExplanation(ca: CaIdentity & { dir: string }, system: boolean): string {
  return [
    `ServeStack's local certificate authority (CA) issues the certificates of "tls": "auto".`,
    `Trusting it lets Chromium, Chrome and Firefox open ServeStack's https:// pages without a warning.`,
    `  CA certificate: ${ca.certFile}`,
    `  Its private key stays in ${ca.dir}, readable by you alone: whoever has it can make`,
    `  certificates your browsers accept, so never share or commit it.`,
    system ? `Adding it to the browsers' certificate databases and to the system store:` : `Adding it to the browsers' certificate databases (the system store only with --system):`,
  ].join('\n');
}

const WORDS: Record<StoreOutcome['result'], string> = {
  added: 'added', removed: 'removed', already: 'already trusted', absent: 'was not there', skipped: 'skipped', failed: 'FAILED',
};

export function describeOutcome(outcome: StoreOutcome & { commands?: string[] }): string {
  const lines = [`  ${outcome.store}: ${WORDS[outcome.result]}${outcome.detail ? ` (${outcome.detail})` : ''}`];
  for (const command of outcome.commands ?? []) lines.push(`      ${command}`);
  return lines.join('\n');
}

export interface TrustRun {
  outcomes: Array<StoreOutcome & { commands?: string[] }>;
  certFile: string;
}

/** Adds the CA (made now if it does not exist yet) to the NSS stores, and the system store when asked. */
export async function trustLocalCa(options: { system: boolean; dir?: string }, say: Out): Promise<TrustRun> {
  const ca = await loadOrCreateCa(options.dir ?? caDir());
  say(trustExplanation(ca, options.system));
  const outcomes: TrustRun['outcomes'] = addToNssStores(ca);
  if (options.system) outcomes.push(changeSystemStore(ca, 'add'));
  for (const o of outcomes) say(describeOutcome(o));
  if (outcomes.length === 0) say('  no browser certificate database was found (start Firefox once to make its profile, then run this again)');
  return { outcomes, certFile: ca.certFile };
}

export async function untrustLocalCa(options: { system: boolean; dir?: string }, say: Out): Promise<TrustRun | undefined> {
  const dir = options.dir ?? caDir();
  if (!existingCaCertFile(dir)) {
    say(`No local CA was made yet (${dir}): nothing to remove.`);
    return undefined;
  }
  const ca = await loadOrCreateCa(dir);
  say(`Removing ServeStack's local CA (${ca.certFile}) from the browsers' certificate databases${options.system ? ' and the system store' : ''}:`);
  const outcomes: TrustRun['outcomes'] = removeFromNssStores(ca);
  if (options.system) outcomes.push(changeSystemStore(ca, 'remove'));
  for (const o of outcomes) say(describeOutcome(o));
  say(`The CA itself stays in ${ca.dir}; remove that folder to make a new one next time.`);
  return { outcomes, certFile: ca.certFile };
}

export async function runTrustVerb(verb: 'trust' | 'untrust', args: string[], io: { out: Out; err: Out }): Promise<number> {
  const { values } = parseArgs({ args, options: { system: { type: 'boolean', default: false } } });
  const system = values.system ?? false;
  const run = verb === 'trust' ? await trustLocalCa({ system }, io.out) : await untrustLocalCa({ system }, io.out);
  if (!run) return 0;
  const failed = run.outcomes.filter((o) => o.result === 'failed');
  if (verb === 'trust') {
    io.out(`Restart the browser if it was open. Other programs: NODE_EXTRA_CA_CERTS=${run.certFile} for Node, curl --cacert ${run.certFile}${system ? '' : ', or run `servestack trust --system`'}.`);
  }
  if (failed.length) {
    io.err(new ServeStackError('TRUST_FAILED', `${failed.length} store${failed.length === 1 ? '' : 's'} could not be changed: ${failed.map((f) => f.store).join(', ')}`, {
      hint: 'see the lines above for what certutil said',
    }).format());
    return 1;
  }
  return 0;
}
