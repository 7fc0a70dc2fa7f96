// Addresses and URLs the server is reachable at besides loopback: the LAN address for
// "Serve on my network", and http://NAME.localhost:PORT/ for a named folder.
import os from 'node:os';
import { expandPathPrefix } from './proxy/trustedFront';

/**
 * The machine's first non-internal IPv4 address (what a phone on the same Wi-Fi can
 * reach), or undefined when there is none. `interfaces` is injectable for tests.
 */
export function lanAddress(interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]> = os.networkInterfaces()): string | undefined {
  for (const [name, infos] of Object.entries(interfaces)) {
    // Container and VM bridges are not the network a phone is on.
    if (/^(docker|br-|veth|virbr|vboxnet|vmnet|cni|flannel|tun|tap|wg)/.test(name)) continue;
    for (const info of infos ?? []) if (info.family === 'IPv4' && !info.internal) return info.address;
  }
  return undefined;
}

/** http://NAME.localhost:PORT/ — *.localhost resolves to loopback in browsers (RFC 6761 §6.3). */
export function namedUrl(name: string, port: number): string {
  return `http://${name}.localhost:${port}/`;
}

export { expandPathPrefix };
