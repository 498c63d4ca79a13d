// The provider rows of the AI Providers page show when each provider was last used and its median
// latency, from `storyteller.providers.list` (`lastUsedAt`, `medianLatencyMs`: the server's request
// log), and nothing of the kind before its first request. Headless Chromium; the list is given.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { openProvidersPage } from './support/providers-page.mjs';

const FIVE_MINUTES_AGO = new Date(Date.now() - 5 * 60_000).toISOString();
const LIST = [
    {
        id: 1, provider: 'openai', displayName: 'OpenAI', model: 'gpt-4o', isPrimary: true, isActive: true,
        keySource: 'env', keyHint: '••••abcd', health: 'ok', lastUsedAt: FIVE_MINUTES_AGO, medianLatencyMs: 420,
    },
    {
        id: 2, provider: 'claude', displayName: 'Claude', model: 'claude-sonnet-4-5', isPrimary: false, isActive: true,
        keySource: 'file', keyHint: '••••wxyz', health: 'unknown', lastUsedAt: null, medianLatencyMs: null,
    },
];

let ui;

before(async () => {
    ui = await openProvidersPage({
        execute: async (command) => (command === 'storyteller.providers.list' ? LIST : []),
    });
});

after(async () => {
    await ui?.close();
});

test('each row says when its provider was last used and its median latency', async () => {
    const page = ui.page;
    await page.waitForSelector('#provider-rows tr[data-id="2"]');
    const usage = await page.$$eval('#provider-rows tr', (trs) =>
        trs.map((tr) => tr.querySelector('.provider-usage')?.textContent ?? null),
    );
    assert.deepEqual(usage, ['Last used 5 min ago · median 420 ms', null]);
});
