// The AI Providers page in headless Chromium, driven like a user would, with a real storyteller-lsp
// behind the page's bridge (started with the capabilities VS Code sends) and the real provider
// simulator behind the server. Proves the page end to end: the server's catalogue and §7 texts,
// "Testing connection..." then the server's verdict, Save only after a successful test, masked
// keys, a provider added elsewhere appearing through storyteller/status, Active and Primary,
// Edit with Change API Key (a rotation the server tests), Delete with the confirmation and the
// server's question for the next primary, the CSP, and that keys do not linger in the page.
// Saves target/editors/settings-page.png (the list, and the Edit form after a successful test).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { artifactsDir } from './support/paths.mjs';
import { openProvidersPage, rows, waitForText } from './support/providers-page.mjs';
import { startServer, startSimulator } from './support/real-server.mjs';
import { VSCODE_CLIENT_INFO, vscodeClientCapabilities } from './support/vscode-client-capabilities.mjs';

const EMPTY = 'No AI providers configured. Add one to enable AI features.';
const CUSTOM = 'Custom (OpenAI-compatible)';
const GOOD_KEY = 'sk-editors-good-key-5678';
const SECOND_KEY = 'sk-editors-second-9999';
const ROTATED_KEY = 'sk-editors-rotated-9876';

describe('AI Providers page against the real server', () => {
    let sim;
    let server;
    let ui;
    let page;
    /** The answer the "user" gives to the server's next message request (a button title). */
    let nextAnswer;

    before(async () => {
        sim = await startSimulator();
        server = await startServer({
            capabilities: vscodeClientCapabilities(),
            clientInfo: VSCODE_CLIENT_INFO,
            onShowMessageRequest: (params) => {
                const title = nextAnswer?.(params);
                nextAnswer = undefined;
                return params.actions?.find((a) => a.title === title) ?? null;
            },
            // As the extension does: every storyteller/status goes to the open page.
            onStatus: (report) => ui?.host.status(report),
        });
        ui = await openProvidersPage({ execute: (command, args) => server.execute(command, args) });
        page = ui.page;
    });

    after(async () => {
        await ui?.close();
        server?.kill();
        sim?.stop();
    });

    /** The ::before mark of the test result: the spinner's animation, or the ✓ / ✗ drawn by CSS. */
    async function testMark() {
        return page.evaluate(() => {
            const style = getComputedStyle(document.querySelector('#test-result'), '::before');
            return { content: style.content, animation: style.animationName };
        });
    }

    async function serverList() {
        return server.execute('storyteller.providers.list', {});
    }

    /** Waits until the page has no request or refresh outstanding: it shows the server's latest list. */
    async function idle() {
        await page.waitForFunction(() => document.body.dataset.busy === 'false', undefined, { timeout: 15000 });
    }

    test('an empty list shows the empty-state text', async () => {
        await waitForText(page, '#empty-state', EMPTY);
        assert.equal(await page.isHidden('#provider-table'), true);
    });

    test("the add form offers the server's catalogue and pre-fills its default model", async () => {
        const catalog = await server.execute('storyteller.providers.catalog', {});
        await page.click('#add-provider');
        const options = await page.$$eval('#provider-kind option', (os) => os.map((o) => [o.value, o.textContent]));
        assert.deepEqual(options, catalog.map((c) => [c.provider, c.displayName]));
        assert.deepEqual(options.map(([value]) => value), ['openai', 'claude', 'gemini', 'deepseek', 'yandex', 'scaleway', 'openrouter', 'custom']);
        assert.equal(await page.inputValue('#model'), 'gpt-4o');
        assert.equal(await page.getAttribute('#api-key', 'type'), 'password');
        assert.equal(await page.getAttribute('#key-help', 'href'), 'https://platform.openai.com/api-keys');
        // The link's text comes from the server's catalogue.
        assert.equal(await page.textContent('#key-help'), 'Get your OpenAI API key');
        assert.equal(await page.textContent('#key-help'), catalog[0].keyHelpText);
        assert.equal(await page.isHidden('#endpoint-field'), true, 'endpoint is only for Custom');
        await page.selectOption('#provider-kind', 'claude');
        assert.equal(await page.inputValue('#model'), 'claude-sonnet-4-5');
        await page.selectOption('#provider-kind', 'yandex');
        assert.equal(await page.isVisible('#folder-field'), true, 'Yandex asks for its folder');
        assert.equal(await page.isHidden('#sign-in'), true, 'no browser sign-in for Yandex');
        await page.selectOption('#provider-kind', 'scaleway');
        assert.equal(await page.textContent('#key-help'), 'Get your Scaleway API key');
        await page.selectOption('#provider-kind', 'openrouter');
        assert.equal(await page.isVisible('#sign-in'), true, 'OpenRouter offers a browser sign-in');
        assert.equal((await page.textContent('#sign-in')).trim(), 'Sign in with OpenRouter');
        assert.equal(await page.getAttribute('#key-help', 'href'), 'https://openrouter.ai/keys');
        assert.equal(await page.textContent('#key-help'), 'Get your OpenRouter API key');
        await page.selectOption('#provider-kind', 'custom');
        assert.equal(await page.isHidden('#key-help'), true, 'no key to get for Custom');
        assert.equal(await page.isHidden('#sign-in'), true);
        assert.equal(await page.isVisible('#endpoint-field'), true);
        assert.equal(await page.isHidden('#folder-field'), true);
        assert.equal(await page.isDisabled('#save'), true);
    });

    test("Custom: the endpoint's models are offered; a refused key shows 'Testing connection...', then the server's message", async () => {
        // A Custom (OpenAI-compatible) provider pointed at the simulator; keys containing
        // "invalid" are refused there as a vendor refuses a bad key.
        assert.equal(await page.inputValue('#model'), '', 'Custom has no default model');
        await page.fill('#endpoint', sim.endpoint('custom'));
        await page.press('#endpoint', 'Tab');
        // The server lists the endpoint's models; the empty model field takes the first.
        const listed = (await server.execute('storyteller.providers.models', { provider: 'custom', endpoint: sim.endpoint('custom') })).map((m) => m.id);
        await page.waitForFunction((first) => document.querySelector('#model').value === first, listed[0], { timeout: 15000 });
        await page.fill('#model', 'storyteller-sim');
        await page.fill('#api-key', 'sk-invalid-editors-0000');
        await sim.control('POST', '/_sim/latency', { provider: 'custom', ms: 1500 });
        await page.click('#test-connection');
        await waitForText(page, '#test-result', 'Testing connection...');
        assert.equal((await testMark()).animation, 'storyteller-spin', 'a spinner while the test runs');
        assert.equal(await page.getAttribute('#test-connection', 'aria-busy'), 'true');
        assert.equal(await page.isDisabled('#save'), true);
        await waitForText(page, '#test-result', `The API key for ${CUSTOM} is invalid. Please check your key in Settings.`, 20000);
        assert.deepEqual(await testMark(), { content: '"✗"', animation: 'none' });
        assert.equal(await page.getAttribute('#test-connection', 'aria-busy'), null);
        await sim.control('POST', '/_sim/latency', { provider: 'custom', ms: 0 });
        assert.equal(await page.isDisabled('#save'), true, 'Save stays disabled after a failed test');
        assert.deepEqual(await serverList(), [], 'a test stores nothing');
    });

    test('a good key enables Save; editing a field afterwards disables it again', async () => {
        await page.fill('#api-key', GOOD_KEY);
        await page.click('#test-connection');
        await waitForText(page, '#test-result', 'Connection successful! Model: storyteller-sim', 20000);
        assert.deepEqual(await testMark(), { content: '"✓"', animation: 'none' });
        assert.equal(await page.isEnabled('#save'), true);
        await page.fill('#model', 'storyteller-sim-2');
        assert.equal(await page.isDisabled('#save'), true, 'a new model needs a new test');
        await page.fill('#model', 'storyteller-sim');
        await page.click('#test-connection');
        await waitForText(page, '#test-result', 'Connection successful! Model: storyteller-sim', 20000);
        assert.equal(await page.isEnabled('#save'), true);
        // The model field offers the server's own listing of the endpoint's models.
        const listed = (await server.execute('storyteller.providers.models', { provider: 'custom', endpoint: sim.endpoint('custom') })).map((m) => m.id);
        await page.waitForFunction((n) => document.querySelectorAll('#model-options option').length === n, listed.length);
        assert.deepEqual(await page.$$eval('#model-options option', (os) => os.map((o) => o.value)), listed);
    });

    test('saving adds the provider, shows the toast and forgets the key', async () => {
        assert.equal(await page.isChecked('#set-primary'), true, 'the first provider defaults to primary');
        await page.click('#save');
        await waitForText(page, '#toast', 'Provider added successfully', 20000);
        await page.waitForSelector('#provider-rows tr');
        const [row] = await rows(page);
        assert.deepEqual(
            { name: row.name, model: row.model, key: row.key, active: row.active, primary: row.primary },
            { name: CUSTOM, model: 'storyteller-sim', key: '••••5678', active: true, primary: true },
        );
        assert.equal(await page.isHidden('#provider-form-section'), true);
        // Tested before it was stored: the row says so, not "Not checked yet".
        assert.equal(await page.textContent('#provider-rows tr[data-provider="custom"] td.health'), 'Healthy');
        // The list can be re-rendered by a status notification right after the toast. Playwright's
        // $eval finds the element and evaluates on it in two steps, so a re-render between them
        // leaves a detached icon whose computed style is empty. Query and read in one evaluation.
        const icon = await page.evaluate(() => {
            const i = document.querySelector('#provider-rows tr[data-provider="custom"] .provider-icon');
            return i && [i.dataset.kind, i.dataset.letter, getComputedStyle(i, '::before').content];
        });
        assert.deepEqual(icon, ['custom', 'C', '"C"']);
        assert.equal(await page.inputValue('#api-key'), '');
        assert.ok(!(await page.content()).includes(GOOD_KEY), 'the key is not left in the page');
        assert.ok(!ui.seen.stateWrites.some((s) => s.includes('sk-editors')), 'the key never goes to webview state');
        const [stored] = await serverList();
        assert.deepEqual(
            { provider: stored.provider, keySource: stored.keySource, keyHint: stored.keyHint, isPrimary: stored.isPrimary },
            { provider: 'custom', keySource: 'file', keyHint: '••••5678', isPrimary: true },
        );
    });

    test('a provider added elsewhere (CLI, another window) appears through storyteller/status', async () => {
        await server.execute('storyteller.providers.add', { provider: 'openai', apiKey: SECOND_KEY, endpoint: sim.endpoint('openai') });
        await page.waitForFunction(() => document.querySelectorAll('#provider-rows tr').length === 2, undefined, { timeout: 15000 });
        const list = await rows(page);
        assert.deepEqual(list.map((r) => [r.provider, r.primary, r.key]), [
            ['custom', true, '••••5678'],
            ['openai', false, '••••9999'],
        ]);
    });

    test('the editor can open the edit form of one provider (Update Key)', async () => {
        await idle();
        const openai = (await serverList()).find((p) => p.provider === 'openai');
        assert.equal(await page.isHidden('#provider-form-section'), true);
        ui.host.edit(openai.id);
        await waitForText(page, '#form-heading', 'Edit OpenAI');
        assert.equal(await page.isVisible('#provider-form-section'), true);
        // Opened for its key: the key field is ready for the new one.
        assert.equal(await page.isVisible('#api-key'), true);
        assert.equal(await page.evaluate(() => document.activeElement?.id), 'api-key');
        assert.equal(await page.isHidden('#change-key'), true);
        assert.equal(
            await page.$eval('#form-heading .provider-icon', (i) => i.dataset.kind),
            'openai',
        );
        await page.click('#cancel-form');
        assert.equal(await page.isHidden('#provider-form-section'), true);
    });

    test('the Primary radio makes exactly one primary', async () => {
        await idle();
        await page.check('#provider-rows tr[data-provider="openai"] .primary-radio');
        await page.waitForFunction(
            () => document.querySelector('#provider-rows tr[data-provider="custom"] .primary-radio')?.checked === false,
            undefined,
            { timeout: 15000 },
        );
        assert.deepEqual((await serverList()).filter((p) => p.isPrimary).map((p) => p.provider), ['openai']);
    });

    test('the Active toggle switches a provider off and on', async () => {
        const activeOf = async () => (await serverList()).find((p) => p.provider === 'custom').isActive;
        /** The server's value once it is `expected`, or the last seen after 15 s. */
        const settle = async (expected) => {
            const until = Date.now() + 15000;
            let seen = await activeOf();
            while (seen !== expected && Date.now() < until) {
                await new Promise((r) => setTimeout(r, 50));
                seen = await activeOf();
            }
            return seen;
        };
        const toggle = '#provider-rows tr[data-provider="custom"] .active-toggle';
        await idle();
        await page.uncheck(toggle);
        assert.equal(await settle(false), false);
        await idle();
        assert.equal(await page.isChecked(toggle), false, 'the page shows the server state');
        await page.check(toggle);
        assert.equal(await settle(true), true);
        await idle();
        assert.equal(await page.isChecked(toggle), true);
    });

    test('Edit shows the masked key; Change API Key rotates it after a test', async () => {
        await idle();
        await page.click('#provider-rows tr[data-provider="openai"] .edit');
        assert.equal(await page.textContent('#form-heading'), 'Edit OpenAI');
        await waitForText(page, '#key-hint', '••••9999');
        assert.equal(await page.isHidden('#api-key'), true);
        assert.equal(await page.isDisabled('#provider-kind'), true);
        assert.equal(await page.isDisabled('#save'), true);
        await page.click('#change-key');
        assert.equal(await page.isVisible('#api-key'), true);
        await page.fill('#api-key', ROTATED_KEY);
        await page.click('#test-connection');
        // Tested against the stored endpoint (the simulator) with the new key.
        await waitForText(page, '#test-result', 'Connection successful! Model: gpt-4o', 20000);
        mkdirSync(artifactsDir, { recursive: true });
        await page.screenshot({ path: join(artifactsDir, 'settings-page.png'), fullPage: true });
        await page.click('#save');
        await page.waitForSelector('#provider-form-section', { state: 'hidden', timeout: 20000 });
        await page.waitForFunction(
            () => document.querySelector('#provider-rows tr[data-provider="openai"]')?.children[2].textContent === '••••9876',
            undefined,
            { timeout: 15000 },
        );
        assert.equal((await serverList()).find((p) => p.provider === 'openai').keyHint, '••••9876');
        assert.ok(!(await page.content()).includes(ROTATED_KEY));
    });

    test('Delete asks with the §7 text; Cancel keeps the provider, Remove deletes it', async () => {
        await idle();
        await page.click('#provider-rows tr[data-provider="custom"] .delete');
        await waitForText(
            page,
            '#confirm-text',
            `Remove ${CUSTOM}? This will delete the stored API key and you'll need to re-enter it if you want to use this provider again.`,
        );
        assert.equal(await page.textContent('#confirm-yes'), 'Remove');
        assert.equal(await page.textContent('#confirm-no'), 'Cancel');
        await page.click('#confirm-no');
        assert.equal(await page.isHidden('#confirm'), true);
        assert.equal((await serverList()).length, 2, 'Cancel removes nothing');

        // Removing the primary while another remains: the server asks which one is primary now.
        let asked;
        nextAnswer = (params) => {
            asked = params;
            return CUSTOM;
        };
        await page.click('#provider-rows tr[data-provider="openai"] .delete');
        await page.click('#confirm-yes');
        await page.waitForFunction(() => document.querySelectorAll('#provider-rows tr').length === 1, undefined, { timeout: 15000 });
        assert.equal(asked?.message, 'OpenAI was the primary provider. Which provider should be primary now?');
        const [left] = await rows(page);
        assert.deepEqual([left.provider, left.primary], ['custom', true]);

        await page.click('#provider-rows tr[data-provider="custom"] .delete');
        await page.click('#confirm-yes');
        await waitForText(page, '#empty-state', EMPTY, 15000);
        assert.deepEqual(await serverList(), []);
    });

    test('the page keeps its Content-Security-Policy and makes no outside request', async () => {
        const injected = await page.evaluate(() => {
            window.__inlineRan = false;
            const s = document.createElement('script');
            s.textContent = 'window.__inlineRan = true';
            document.body.append(s);
            return window.__inlineRan;
        });
        assert.equal(injected, false, 'an inline script without the nonce must not run');
        const violations = await ui.cspViolations();
        assert.ok(violations.every((v) => v.startsWith('script-src')), `unexpected CSP violations: ${violations}`);
        assert.deepEqual(ui.seen.blockedRequests, [], 'the page itself made no outside request');
        assert.deepEqual(ui.seen.consoleErrors.filter((e) => !/Content Security Policy/.test(e)), []);
        const csp = await page.getAttribute('meta[http-equiv="Content-Security-Policy"]', 'content');
        assert.match(csp, /default-src 'none'/);
        assert.match(csp, /script-src 'nonce-[A-Za-z0-9_-]{20,}'/);
        assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    });
});
