/**
 * What counts as loopback. An IP literal is parsed (net.isIP), then checked against 127.0.0.0/8,
 * ::1 and ::ffff:127.0.0.0/104; a name counts only if it is `localhost` and, where it is used,
 * resolves to loopback addresses only. A name that merely starts with "127." is a name like any other.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4'); // also matches IPv4-mapped ::ffff:127.x in any spelling
LOOPBACK.addAddress('::1', 'ipv6');

/** An address in 127.0.0.0/8, ::1, or an IPv4-mapped 127.x (::ffff:127.0.0.1, ::ffff:7f00:1). */
export function isLoopbackAddress(addr: string): boolean {
  const a = addr.replace(/^\[(.*)\]$/, '$1');
  const v = isIP(a);
  return v !== 0 && LOOPBACK.check(a, v === 6 ? 'ipv6' : 'ipv4');
}

/**
 * Loopback by syntax alone (config validation is synchronous): an IP literal in a loopback range,
 * or the name `localhost` (which must then also pass resolvesToLoopbackOnly where it is used).
 */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .replace(/^\[(.*)\]$/, '$1')
    .toLowerCase()
    .replace(/\.$/, '');
  if (isIP(h)) return isLoopbackAddress(h);
  return h === 'localhost';
}

/**
 * The loopback address to use for `host`, or null if it is not loopback: the literal itself, or for
 * `localhost` the first resolved address, provided every resolved address is loopback. Called at
 * connect/listen time, and the caller uses the address returned (not the name again), so the
 * resolver's answer then is what counts.
 */
export async function loopbackAddressOf(
  host: string,
  resolve: (h: string) => Promise<{ address: string }[]> = (h) => lookup(h, { all: true }),
): Promise<string | null> {
  if (!isLoopbackHost(host)) return null;
  const h = host.replace(/^\[(.*)\]$/, '$1');
  if (isIP(h)) return h;
  try {
    const addrs = await resolve(h);
    return addrs.length > 0 && addrs.every((a) => isLoopbackAddress(a.address))
      ? (addrs[0] as { address: string }).address
      : null;
  } catch {
    return null;
  }
}
