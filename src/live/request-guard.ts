/**
 * Checks on who is asking, beyond the token: a browser on the box can be steered at the live view by any
 * web page it opens (DNS rebinding, cross-site WebSocket), so the Host and Origin headers must name the
 * live view itself. Pure functions of the request headers.
 */
import { isIP } from 'node:net';

/** The hostname of a Host header value ("name:port", "[::1]:port"), lower case; null if malformed. */
function hostnameOf(hostHeader: string | undefined): string | null {
  if (!hostHeader) return null;
  try {
    return new URL(`http://${hostHeader}`).hostname.toLowerCase();
  } catch {
    return null;
  }
}

/** A name a browser only uses for this machine: localhost, 127.0.0.0/8, ::1. */
export function isLoopbackName(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return isIP(h) === 6 && h === '::1';
}

/**
 * The reason to refuse a request, or null. Without a token (a loopback-only view) the Host must be a
 * loopback name: a page whose DNS name was rebound to 127.0.0.1 still sends its own name. With an
 * Origin (every browser WebSocket, cross-site fetches) it must be the same host and port as the Host.
 */
export function requestRefusal(headers: { host?: string; origin?: string }, tokenRequired: boolean): string | null {
  const host = hostnameOf(headers.host);
  if (!tokenRequired && (host === null || !isLoopbackName(host))) return 'host is not a loopback name';
  if (headers.origin === undefined) return null;
  if (headers.origin === 'null') return 'opaque origin';
  let origin: URL;
  try {
    origin = new URL(headers.origin);
  } catch {
    return 'malformed origin';
  }
  return origin.host.toLowerCase() === (headers.host ?? '').toLowerCase() ? null : 'cross-origin request';
}
