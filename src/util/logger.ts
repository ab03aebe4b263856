/** Structured JSON logs (pino). Commands that print results on stdout log to stderr instead. */
import { pino, type Logger } from 'pino';

export function createLogger(level: string, toStderr = false): Logger {
  return pino({ level, base: { svc: 'thyroid-edge' } }, toStderr ? pino.destination(2) : pino.destination(1));
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export type { Logger };
