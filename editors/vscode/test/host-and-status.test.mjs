// Unit tests of the two pure pieces of the extension host: the page host (message carrying and
// error shaping) and the status bar view of a storyteller/status report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { ProvidersPageHost, pageError } = require('../out/src/providersPage/host.js');
const { describeStatus } = require('../out/src/status.js');
const { settingsProvider } = require('../out/src/contract.js');

function hostWith(execute) {
    const posted = [];
    const calls = [];
    const host = new ProvidersPageHost(async (command, args) => {
        calls.push({ command, args });
        return execute(command, args);
    }, (m) => posted.push(m));
    return { host, posted, calls };
}

test('page operations become storyteller.providers.* commands with the arguments unchanged', async () => {
    const { host, posted, calls } = hostWith(async () => ({ id: 7 }));
    await host.receive({ type: 'op', requestId: 3, op: 'add', args: { provider: 'openai', apiKey: 'sk-x' } });
    assert.deepEqual(calls, [{ command: 'storyteller.providers.add', args: { provider: 'openai', apiKey: 'sk-x' } }]);
    assert.deepEqual(posted, [{ type: 'opResult', requestId: 3, ok: true, result: { id: 7 } }]);
});

test('messages that are not known operations are ignored', async () => {
    const { host, posted, calls } = hostWith(async () => ({}));
    for (const bad of [null, 'list', { type: 'op', requestId: 1, op: 'generate', args: {} }, { type: 'op', requestId: 1, op: 'list', args: [] }, { type: 'op', op: 'list', args: {} }]) {
        await host.receive(bad);
    }
    assert.deepEqual(calls, []);
    assert.deepEqual(posted, []);
});

test('a JSON-RPC error reaches the page as the server message and kind', async () => {
    const { host, posted } = hostWith(async () => {
        const e = new Error('The API key for OpenAI is invalid. Please check your key in Settings.');
        e.code = -32001;
        e.data = { kind: 'invalidKey' };
        throw e;
    });
    await host.receive({ type: 'op', requestId: 1, op: 'test', args: {} });
    assert.deepEqual(posted, [
        { type: 'opResult', requestId: 1, ok: false, error: { message: 'The API key for OpenAI is invalid. Please check your key in Settings.', kind: 'invalidKey' } },
    ]);
});

test('pageError never throws on odd values', () => {
    assert.deepEqual(pageError('boom'), { message: 'boom' });
    assert.deepEqual(pageError(undefined), { message: 'The request failed.' });
    assert.deepEqual(pageError({ message: 'x', data: null }), { message: 'x', kind: undefined });
});

test('status notifications are forwarded and replayed to a page that opens later', async () => {
    const { host, posted } = hostWith(async () => ({}));
    host.status({ state: 'ready' });
    await host.receive({ type: 'ready' });
    assert.deepEqual(posted, [
        { type: 'status', status: { state: 'ready' } },
        { type: 'status', status: { state: 'ready' } },
    ]);
});

// The shape of storyteller/status as the server sends it (protocol-real.test.mjs checks the
// status bar text of live notifications too).
const openai = { displayName: 'OpenAI', id: 1, provider: 'openai' };
const scaleway = { displayName: 'Scaleway (EU)', id: 2, provider: 'scaleway' };
const providers = [
    { ...openai, health: 'ok', isActive: true, isPrimary: true, key: 'user', lastUsedAt: null, model: 'gpt-4o', rateLimit: { perMinute: 50, remaining: 48 } },
    { ...scaleway, health: 'ok', isActive: true, isPrimary: false, key: 'user', lastUsedAt: null, model: 'mistral-small-3.2-24b-instruct-2506', rateLimit: { perMinute: 10, remaining: 9 } },
];

test('status bar view for each state', () => {
    const cases = [
        [{ state: 'ready', active: openai, primary: openai, failover: false, providers }, '$(book) StoryTeller: OpenAI · 48/50 per min', false, 'normal'],
        [{ state: 'degraded', active: scaleway, primary: openai, failover: true, providers }, '$(warning) StoryTeller: Scaleway (EU) · 9/10 per min', false, 'warning'],
        [{ state: 'offline', active: null, primary: openai, failover: false, providers }, '$(cloud-offline) StoryTeller: offline', false, 'warning'],
        [{ state: 'notConfigured', active: null, primary: null, failover: false, providers: [] }, '$(gear) StoryTeller: set up AI', true, 'warning'],
        [{ state: 'ready', active: openai, primary: openai, failover: false }, '$(book) StoryTeller: OpenAI', false, 'normal'],
        [undefined, '$(book) StoryTeller', false, 'normal'],
    ];
    for (const [report, text, opensSettings, severity] of cases) {
        const view = describeStatus(report);
        assert.equal(view.text, text, JSON.stringify(report));
        assert.equal(view.opensSettings, opensSettings, JSON.stringify(report));
        assert.equal(view.severity, severity, JSON.stringify(report));
    }
    assert.match(describeStatus({ state: 'degraded', active: scaleway, primary: openai, failover: true, providers }).tooltip, /Scaleway \(EU\) instead of OpenAI/);
    assert.equal(describeStatus({ state: 'notConfigured' }).tooltip, 'AI providers not configured. Would you like to set one up now?');
});

test('an edit form asked for before the page is ready is sent once it is', async () => {
    const { host, posted } = hostWith(async () => ({}));
    host.edit(4);
    assert.deepEqual(posted, [], 'nothing reaches a page that does not listen yet');
    await host.receive({ type: 'ready' });
    assert.deepEqual(posted, [{ type: 'edit', providerId: 4 }]);
    host.edit(5);
    assert.deepEqual(posted.at(-1), { type: 'edit', providerId: 5 });
    await host.receive({ type: 'ready' });
    assert.equal(posted.filter((m) => m.type === 'edit').length, 2, 'sent once');
});

test('storyteller/openSettings names the provider to edit by providerId', () => {
    assert.equal(settingsProvider({ reason: 'keyRevoked', providerId: 3 }), 3);
    for (const params of [{ reason: 'notConfigured' }, null, undefined, { providerId: '3' }, { providerId: 1.5 }]) {
        assert.equal(settingsProvider(params), undefined);
    }
});
