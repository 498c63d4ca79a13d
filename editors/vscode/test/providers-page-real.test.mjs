// The AI Providers page in headless Chromium with a real storyteller-lsp behind the bridge and the
// real provider simulator behind the server: the user adds a Custom provider with a failing key,
// then a good one, sets a primary, and deletes. Skips, saying why, while the server lacks the
// provider commands. Saves target/editors/settings-page.png.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { artifactsDir, chromiumPath } from './support/paths.mjs';
import { openProvidersPage, rows, waitForText } from './support/providers-page.mjs';
import { missingFeatures, startServer, startSimulator } from './support/real-server.mjs';
import { VSCODE_CLIENT_INFO, vscodeClientCapabilities } from './support/vscode-client-capabilities.mjs';

const EMPTY = 'No AI providers configured. Add one to enable AI features.';
const PROVIDER_COMMANDS = ['list', 'catalog', 'test', 'add', 'update', 'remove', 'setPrimary', 'models'].map(
    (op) => `storyteller.providers.${op}`,
);

describe('AI Providers page against the real server', () => {
    let sim;
    let server;
    let ui;
    let skip;

    before(async () => {
        if (!existsSync(chromiumPath())) {
            skip = `Chromium not found at ${chromiumPath()}`;
            return;
        }
        sim = await startSimulator();
        if (sim.skip) {
            skip = sim.skip;
            return;
        }
        server = await startServer({ capabilities: vscodeClientCapabilities(), clientInfo: VSCODE_CLIENT_INFO });
        if (server.skip) {
            skip = server.skip;
            server = undefined;
            return;
        }
        skip = missingFeatures(server.initResult, { commands: PROVIDER_COMMANDS });
        if (!skip) ui = await openProvidersPage({ execute: (command, args) => server.execute(command, args) });
    });

    after(async () => {
        await ui?.close();
        server?.kill();
        sim?.stop?.();
    });

    test('add with a failing then a good key, set primary, delete', async (t) => {
        if (skip) return t.skip(skip);
        const { page } = ui;
        await waitForText(page, '#empty-state', EMPTY);

        // A Custom (OpenAI-compatible) provider pointed at the simulator; keys containing
        // "invalid" are refused there like a vendor refuses a bad key.
        await page.click('#add-provider');
        await page.selectOption('#provider-kind', 'custom');
        await page.fill('#endpoint', sim.endpoint('custom'));
        await page.fill('#model', 'storyteller-sim');
        await page.fill('#api-key', 'sk-invalid-editors-0000');
        await page.click('#test-connection');
        await waitForText(page, '#test-result', /^The API key for .+ is invalid\. Please check your key in Settings\.$/, 20000);
        assert.equal(await page.isDisabled('#save'), true, 'Save stays disabled after a failed test');

        await page.fill('#api-key', 'sk-editors-good-key-5678');
        await page.click('#test-connection');
        await waitForText(page, '#test-result', /^Connection successful! Model: .+/, 20000);
        assert.equal(await page.isEnabled('#save'), true);
        await page.click('#save');
        await waitForText(page, '#toast', 'Provider added successfully', 20000);
        await page.waitForSelector('#provider-rows tr');
        let list = await rows(page);
        assert.equal(list.length, 1);
        assert.equal(list[0].provider, 'custom');
        assert.equal(list[0].key, '••••5678', 'the key is shown masked');
        assert.equal(list[0].primary, true, 'the only provider is the primary');
        assert.ok(!(await page.content()).includes('sk-editors-good-key-5678'), 'the key is not left in the page');

        // A second provider, added the way the CLI or another window would; the page picks it up.
        await server.execute('storyteller.providers.add', {
            provider: 'openai',
            apiKey: 'sk-editors-second-9999',
            endpoint: sim.endpoint('openai'),
        });
        await page.reload();
        await page.waitForSelector('body[data-ready="true"]');
        await page.waitForFunction(() => document.querySelectorAll('#provider-rows tr').length === 2);

        await page.check('#provider-rows tr[data-provider="openai"] .primary-radio');
        await page.waitForFunction(
            () => document.querySelector('#provider-rows tr[data-provider="custom"] .primary-radio')?.checked === false,
            undefined,
            { timeout: 15000 },
        );
        const fromServer = await server.execute('storyteller.providers.list', {});
        const serverRows = Array.isArray(fromServer) ? fromServer : fromServer.providers;
        assert.deepEqual(
            serverRows.filter((p) => p.isPrimary).map((p) => p.provider),
            ['openai'],
            'exactly one primary, the one chosen',
        );

        mkdirSync(artifactsDir, { recursive: true });
        await page.screenshot({ path: join(artifactsDir, 'settings-page.png'), fullPage: true });

        await page.click('#provider-rows tr[data-provider="custom"] .delete');
        await waitForText(page, '#confirm-text', /^Remove .+\? This will delete the stored API key and you'll need to re-enter it if you want to use this provider again\.$/);
        await page.click('#confirm-yes');
        await page.waitForFunction(() => document.querySelectorAll('#provider-rows tr').length === 1, undefined, { timeout: 15000 });
        list = await rows(page);
        assert.deepEqual(list.map((r) => r.provider), ['openai']);
        assert.deepEqual(ui.seen.blockedRequests, [], 'the page itself made no outside request');
    });
});
