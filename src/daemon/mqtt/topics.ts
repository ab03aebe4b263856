/** Topic names under <base>/<deviceId>/. */
export class Topics {
  readonly root: string;
  constructor(base: string, deviceId: string) {
    this.root = `${base.replace(/\/+$/, '')}/${deviceId}`;
  }
  get status(): string { return `${this.root}/status`; }
  get telemetry(): string { return `${this.root}/telemetry`; }
  get result(): string { return `${this.root}/result`; }
  get mask(): string { return `${this.root}/mask`; }
  get alert(): string { return `${this.root}/alert`; }
  get update(): string { return `${this.root}/update`; }
  get requests(): string { return `${this.root}/request/+`; }
  response(command: string): string { return `${this.root}/response/${command}`; }
  /** the command name of a request topic, or null if the topic is not one */
  commandOf(topic: string): string | null {
    const prefix = `${this.root}/request/`;
    return topic.startsWith(prefix) ? topic.slice(prefix.length) : null;
  }
}
