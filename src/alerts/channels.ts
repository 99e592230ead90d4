// The configured channels (Node: includes e-mail).
import type { AlertChannel } from './channel.ts';
import type { AlertConfig } from './config.ts';
import { EmailChannel } from './email.ts';
import { WebhookChannel } from './webhook.ts';

export function channelsFromConfig(config: AlertConfig): AlertChannel[] {
  const channels: AlertChannel[] = [];
  if (config.webhookUrl) channels.push(new WebhookChannel(config.webhookUrl));
  if (config.smtpUrl) channels.push(new EmailChannel(config.smtpUrl, config.emailTo, config.emailFrom));
  return channels;
}
