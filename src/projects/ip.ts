/**
 * A project's IP policy, applied at ingest before anything is queued (PostHog's capture anonymises IPs
 * by project setting the same way): `keep` passes the client address on; `anonymise` zeroes the last
 * octet of an IPv4 address and keeps the /48 of an IPv6 one (the network, not the host); `drop`
 * removes it. It covers the address API Gateway saw (`QueuedEvent.ip`, which becomes `$ip` of forwarded
 * and sampled events) and any `$ip` an event carries in its properties. A value that is not an address
 * cannot be anonymised safely and is dropped.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { IpPolicy } from './types';

/** `203.0.113.42` → `203.0.113.0`. */
function anonymiseV4(ip: string): string {
  return `${ip.slice(0, ip.lastIndexOf('.'))}.0`;
}

/** The eight 16-bit groups of an IPv6 address (an embedded IPv4 tail counts as the last two). */
function groupsV6(ip: string): number[] {
  let s = ip;
  const zone = s.indexOf('%');
  if (zone !== -1) s = s.slice(0, zone);
  const tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.', lastColon)) {
    const o = s.slice(lastColon + 1).split('.').map(Number);
    tail.push((o[0]! << 8) | o[1]!, (o[2]! << 8) | o[3]!);
    s = `${s.slice(0, lastColon + 1)}0`; // placeholder group, replaced below
  }
  const [head, rest] = s.includes('::') ? s.split('::') : [s, undefined];
  const parse = (part: string | undefined) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const h = parse(head);
  const r = parse(rest);
  if (tail.length) (r.length ? r : h).pop();
  const fill = rest === undefined ? [] : new Array<number>(8 - h.length - r.length - tail.length).fill(0);
  return [...h, ...fill, ...r, ...tail];
}

/** `2001:db8:abcd:12::1` → `2001:db8:abcd::`; an IPv4-mapped address (`::ffff:a.b.c.d`) is anonymised as IPv4. */
function anonymiseV6(ip: string): string {
  const g = groupsV6(ip);
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return `::ffff:${anonymiseV4(`${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`)}`;
  const net = g.slice(0, 3).map((x) => x.toString(16));
  while (net.length && net[net.length - 1] === '0') net.pop();
  return `${net.join(':')}::`;
}

/** The address as the policy lets it through, or `undefined` when it must not travel. */
export function applyIpPolicy(ip: string | undefined, policy: IpPolicy): string | undefined {
  if (ip === undefined || policy === 'keep') return ip;
  if (policy === 'drop') return undefined;
  if (isIPv4(ip)) return anonymiseV4(ip);
  if (isIPv6(ip)) return anonymiseV6(ip);
  return undefined;
}

/**
 * Applies the policy to an event's `$ip` property in place (the properties are the request's own parsed
 * copy); returns the properties. `keep` leaves them untouched.
 */
export function applyIpPolicyToProperties(properties: Record<string, unknown>, policy: IpPolicy): Record<string, unknown> {
  if (policy === 'keep' || !('$ip' in properties)) return properties;
  const v = properties.$ip;
  const next = typeof v === 'string' ? applyIpPolicy(v, policy) : undefined;
  if (next === undefined) delete properties.$ip;
  else properties.$ip = next;
  return properties;
}
