// Real receivers for alert tests: an HTTP webhook endpoint and an SMTP server, both on
// 127.0.0.1 with an ephemeral port. Each can be told to refuse the next N messages (as a
// receiver that is down would) or all of them.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface WebhookReceiver {
  url: string;
  messages: { text: string }[];
  /** Answer the next n requests with HTTP 503. */
  refuseNext(n: number): void;
  refuseAll(on: boolean): void;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const messages: { text: string }[] = [];
  let refuse = 0;
  let refuseAll = false;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (refuseAll || refuse > 0) {
        refuse = Math.max(0, refuse - 1);
        res.writeHead(503, { 'content-type': 'text/plain' }).end('receiver unavailable');
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { text: string };
      messages.push(body);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/alerts`,
    messages,
    refuseNext: (n) => void (refuse = n),
    refuseAll: (on) => void (refuseAll = on),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export interface SmtpReceiver {
  url: string;
  messages: { from: string; to: string[]; raw: string; subject: string }[];
  refuseNext(n: number): void;
  refuseAll(on: boolean): void;
  close(): Promise<void>;
}

export async function startSmtpReceiver(): Promise<SmtpReceiver> {
  const messages: SmtpReceiver['messages'] = [];
  let refuse = 0;
  let refuseAll = false;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (refuseAll || refuse > 0) {
          refuse = Math.max(0, refuse - 1);
          const error = new Error('mailbox temporarily unavailable') as Error & { responseCode: number };
          error.responseCode = 451;
          callback(error);
          return;
        }
        const raw = Buffer.concat(chunks).toString('utf8');
        const subject = /^Subject: (.*(?:\r?\n[ \t].*)*)/m.exec(raw)?.[1]?.replace(/\r?\n[ \t]/g, ' ') ?? '';
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          subject,
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    refuseNext: (n) => void (refuse = n),
    refuseAll: (on) => void (refuseAll = on),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
