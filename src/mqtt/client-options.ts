/**
 * How the box connects: client id, TLS and mTLS (the certificate's CN must be the client id),
 * credentials, the Last Will, and plain transport pinned to loopback.
 */
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import type { IClientOptions } from 'mqtt';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { loopbackAddressOf } from '../util/loopback.js';
import { checkClientIdentity } from './identity.js';
import type { StatusPayload } from './payloads.js';
import { lastWill } from './publisher.js';
import type { Topics } from './topics.js';

export function clientOptions(c: Config, topics: Topics, since: string): IClientOptions {
  const m = c.mqtt;
  const will: StatusPayload = {
    state: 'offline',
    deviceId: c.deviceId,
    version: '',
    model: null,
    capture: null,
    reason: 'connection lost (Last Will)',
    since,
    time: Date.now(),
  };
  const o: IClientOptions = {
    clientId: m.clientId ?? c.deviceId,
    protocolVersion: m.protocolVersion,
    clean: true,
    keepalive: m.keepaliveS,
    reconnectPeriod: m.reconnectMinMs,
    connectTimeout: 10_000,
    queueQoSZero: false, // results are best effort: never pile them up while offline
    will: lastWill(topics.status, will),
  };
  // MQTT 5: the broker sends nothing much bigger than a request may be, so a flood of huge messages is
  // dropped there, not buffered on the box (up to twice the limit is still answered with the reason);
  // 3.1.1 has no such limit
  if (m.protocolVersion === 5) o.properties = { maximumPacketSize: 2 * m.maxCommandBytes + 4096 };
  if (m.username) o.username = m.username;
  if (m.password) o.password = m.password;
  if (m.caFile) o.ca = readFileSync(m.caFile);
  if (m.certFile) {
    o.cert = readFileSync(m.certFile);
    checkClientIdentity(o.clientId as string, o.cert);
  }
  if (m.keyFile) o.key = readFileSync(m.keyFile);
  if (m.caFile || m.certFile) o.rejectUnauthorized = true;
  return o;
}

/**
 * Plain (unencrypted) transport goes only to loopback unless allowInsecure: config validation
 * checked the syntax; here a name must resolve to loopback only, and we connect to that address.
 */
export async function pinPlainToLoopback(url: string, allowInsecure: boolean): Promise<string> {
  const u = new URL(url);
  if (allowInsecure || !['mqtt:', 'tcp:', 'ws:'].includes(u.protocol)) return url;
  const addr = await loopbackAddressOf(u.hostname);
  if (addr === null)
    throw new ConfigError(
      `mqtt.url: plain ${u.protocol.replace(':', '')} to ${u.hostname} is refused: it does not resolve to loopback ` +
        `addresses only; use mqtts:// or wss://, or set mqtt.allowInsecure: true`,
    );
  u.hostname = isIPv6(addr) ? `[${addr}]` : addr;
  return u.toString();
}
