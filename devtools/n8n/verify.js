// Verifies a redis-datafy batch signed the Standard Webhooks way (webhook-id, webhook-timestamp,
// webhook-signature). Needs: the Webhook node's "Raw Body" option on; in n8n's environment
// WHSEC=whsec_..., NODE_FUNCTION_ALLOW_BUILTIN=crypto and N8N_BLOCK_ENV_ACCESS_IN_NODE=false.
const crypto = require('crypto');
const TOLERANCE_SECONDS = 5 * 60;

const headers = $input.first().json.headers; // n8n lower-cases header names
const id = String(headers['webhook-id'] ?? '');
const timestamp = String(headers['webhook-timestamp'] ?? '');
const signatures = String(headers['webhook-signature'] ?? '').split(' ');
// The exact bytes that were signed: never re-serialise the parsed body.
const raw = await this.helpers.getBinaryDataBuffer(0, 'data');

if (!$env.WHSEC) throw new Error('WHSEC is not set in n8n\'s environment');
const key = Buffer.from($env.WHSEC.replace(/^whsec_/, ''), 'base64');
const mac = crypto.createHmac('sha256', key).update(`${id}.${timestamp}.`).update(raw).digest('base64');
const expected = Buffer.from(`v1,${mac}`);
// Any one signature may match: while a secret rotates, the sender signs with the old and the new one.
const signed = signatures.some((s) => {
  const given = Buffer.from(s);
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
});
const fresh = /^\d+$/.test(timestamp) && Math.abs(Date.now() / 1000 - Number(timestamp)) <= TOLERANCE_SECONDS;

if (!signed || !fresh) {
  const reason = !signed ? 'bad signature' : 'timestamp outside 5 minutes';
  return [{ json: { valid: false, reason, batch_id: id, user: null, messages: [] } }];
}
const batch = JSON.parse(raw.toString('utf8'));
return [{ json: { valid: true, batch_id: batch.batch_id, user: batch.user, messages: batch.messages } }];
