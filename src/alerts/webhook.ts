// Slack-compatible incoming webhook: POST {"text": "..."} as JSON. Slack, Mattermost, Rocket.Chat,
// Google Chat and Discord's /slack endpoint all accept this shape. Web-standard fetch only, so it
// runs on Node and Deno alike.
import type { Alert, AlertChannel } from './channel.ts';

const ICON: Record<Alert['severity'], string> = {
  critical: ':rotating_light:',
  warning: ':warning:',
  resolved: ':white_check_mark:',
};

export class WebhookChannel implements AlertChannel {
  readonly name = 'webhook';

  constructor(
    private readonly url: string,
    private readonly options: { timeoutMs?: number } = {},
  ) {}

  async send(alert: Alert): Promise<void> {
    const body = JSON.stringify({ text: `${ICON[alert.severity]} *${alert.subject}*\n${alert.text}` });
    let response: Response;
    try {
      response = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
      });
    } catch (error) {
      // The URL may carry a secret token in its path (Slack's does): name only the host.
      throw new Error(`webhook ${hostOf(this.url)} unreachable: ${(error as Error).message}`);
    }
    if (!response.ok) {
      const detail = (await response.text().catch(() => '')).slice(0, 200);
      throw new Error(`webhook ${hostOf(this.url)} answered HTTP ${response.status}${detail ? `: ${detail}` : ''}`);
    }
    await response.body?.cancel().catch(() => {});
  }
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '<invalid URL>';
  }
}
