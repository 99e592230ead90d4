// E-mail over SMTP with nodemailer (Node only; the edge function uses the webhook channel).
import nodemailer from 'nodemailer';
import type { Alert, AlertChannel } from './channel.ts';

export class EmailChannel implements AlertChannel {
  readonly name = 'email';
  private readonly transport: ReturnType<typeof nodemailer.createTransport>;

  constructor(
    smtpUrl: string,
    private readonly to: string[],
    private readonly from: string,
    options: { timeoutMs?: number } = {},
  ) {
    const timeout = options.timeoutMs ?? 15_000;
    this.transport = nodemailer.createTransport(smtpUrl, {
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: timeout,
    } as Parameters<typeof nodemailer.createTransport>[1]);
  }

  async send(alert: Alert): Promise<void> {
    const prefix = alert.severity === 'resolved' ? '[RESOLVED]' : alert.severity === 'warning' ? '[WARNING]' : '[ALERT]';
    await this.transport.sendMail({
      from: this.from,
      to: this.to,
      subject: `${prefix} ${alert.subject}`,
      text: alert.text,
      headers: { 'X-Overdue-Incident': alert.incidentKey },
    });
  }

  close(): void {
    this.transport.close();
  }
}
