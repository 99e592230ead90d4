// The one interface every alert channel implements. A channel sends one message once; retries,
// incident bookkeeping and recording the outcome are done around it (deliver.ts, monitor.ts).

export type AlertSeverity = 'critical' | 'warning' | 'resolved';

export interface Alert {
  subject: string;
  text: string;
  severity: AlertSeverity;
  /** Which incident this message is about, e.g. `job-failed:update-installment-statuses`. */
  incidentKey: string;
}

export interface AlertChannel {
  /** Short and stable: it is stored in alert_deliveries.channel and used as a metric label. */
  readonly name: string;
  /** Resolves when the receiver accepted the message; throws with a readable error otherwise. */
  send(alert: Alert): Promise<void>;
}

/** The logging surface the alert code needs; src/log.ts's Logger satisfies it. */
export interface AlertLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: AlertLogger = { info() {}, warn() {}, error() {} };
