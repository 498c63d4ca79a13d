// The AI Providers page in headless Chromium, driven like a user would, against the in-memory
// contract (test/support/fake-contract.mjs). Proves the page's own behaviour: §7 texts, Save only
// after a successful test, masked keys, primary/active/edit/delete through the contract, the CSP,
// and that keys do not linger in the page.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { FakeProviderContract } from './support/fake-contract.mjs';
import { artifactsDir, chromiumPath } from './support/paths.mjs';
import { openProvidersPage, rows, waitForText } from './support/providers-page.mjs';

const EMPTY = 'No AI providers configured. Add one to enable AI features.';
const skip = existsSync(chromiumPath()) ? false : `Chromium not found at ${chromiumPath()} (apt-get install chromium, or set CHROMIUM)`;

describe('AI Providers page (in-memory contract)', { skip }, () => {
    let fake;
    let ui;
    let page;

    before(async () => {
        fake = new FakeProviderContract();
        ui = await openProvidersPage({ execute: fake.execute });
        page = ui.page;
    });
    after(async () => {
        await ui?.close();
    });

    test('an empty list shows the empty-state text', async () => {
        await waitForText(page, '#empty-state', EMPTY);
        assert.equal(await page.isHidden('#provider-table'), true);
    });

    test('the add form offers the catalogue and pre-fills the default model', async () => {
        await page.click('#add-provider');
        const options = await page.$$eval('#provider-kind option', (os) => os.map((o) => o.value));
        assert.deepEqual(options, ['openai', 'claude', 'gemini', 'deepseek', 'yandex', 'scaleway', 'custom']);
        assert.equal(await page.inputValue('#model'), 'gpt-4o');
        assert.equal(await page.getAttribute('#api-key', 'type'), 'password');
        assert.equal(await page.isHidden('#endpoint-field'), true, 'endpoint is only for Custom');
        await page.selectOption('#provider-kind', 'claude');
        assert.equal(await page.inputValue('#model'), 'claude-sonnet-4-5');
        await page.selectOption('#provider-kind', 'custom');
        assert.equal(await page.isVisible('#endpoint-field'), true);
        await page.selectOption('#provider-kind', 'openai');
        assert.equal(await page.isHidden('#endpoint-field'), true);
        assert.equal(await page.isDisabled('#save'), true);
    });

    test('a refused key shows the server message and keeps Save disabled', async () => {
        await page.fill('#api-key', 'sk-invalid-0000');
        const release = fake.hold('storyteller.providers.test');
        await page.click('#test-connection');
        await waitForText(page, '#test-result', 'Testing connection...');
        release();
        await waitForText(page, '#test-result', 'The API key for OpenAI is invalid. Please check your key in Settings.');
        assert.equal(await page.isDisabled('#save'), true);
        assert.equal(fake.callsOf('storyteller.providers.add').length, 0);
    });

    test('a good key enables Save; changing a field after the test disables it again', async () => {
        await page.fill('#api-key', 'sk-good-key-abcd');
        await page.click('#test-connection');
        await waitForText(page, '#test-result', 'Connection successful! Model: gpt-4o');
        assert.equal(await page.isEnabled('#save'), true);
        await page.fill('#model', 'gpt-4o-mini');
        assert.equal(await page.isDisabled('#save'), true, 'a new model needs a new test');
        await page.fill('#model', 'gpt-4o');
        await page.click('#test-connection');
        await waitForText(page, '#test-result', 'Connection successful! Model: gpt-4o');
        assert.equal(await page.isEnabled('#save'), true);
        const offered = await page.$$eval('#model-options option', (os) => os.map((o) => o.value));
        assert.ok(offered.includes('gpt-4o'), `models offered from the listing: ${offered}`);
    });

    test('saving adds the provider, shows the toast and forgets the key', async () => {
        await page.click('#save');
        await waitForText(page, '#toast', 'Provider added successfully');
        const [added] = fake.callsOf('storyteller.providers.add');
        assert.deepEqual(added, { provider: 'openai', apiKey: 'sk-good-key-abcd', model: 'gpt-4o', primary: true });
        await page.waitForSelector('#provider-rows tr');
        const [row] = await rows(page);
        assert.equal(row.name, 'OpenAI');
        assert.equal(row.model, 'gpt-4o');
        assert.equal(row.key, '••••abcd');
        assert.equal(row.primary, true);
        assert.equal(await page.isHidden('#provider-form-section'), true);
        assert.equal(await page.inputValue('#api-key'), '');
        const html = await page.content();
        assert.ok(!html.includes('sk-good-key-abcd'), 'the key is not left in the page');
        assert.ok(!ui.seen.stateWrites.some((s) => s.includes('sk-good')), 'the key never goes to webview state');
    });

    test('Set as Primary and the Primary radio make exactly one primary', async () => {
        await page.click('#add-provider');
        await page.selectOption('#provider-kind', 'claude');
        assert.equal(await page.isChecked('#set-primary'), false, 'only the first provider defaults to primary');
        await page.fill('#api-key', 'sk-ant-wxyz');
        await page.click('#test-connection');
        await waitForText(page, '#test-result', 'Connection successful! Model: claude-sonnet-4-5');
        await page.click('#save');
        await page.waitForFunction(() => document.querySelectorAll('#provider-rows tr').length === 2);
        let list = await rows(page);
        assert.deepEqual(list.map((r) => [r.provider, r.primary]), [['openai', true], ['claude', false]]);
        await page.check('#provider-rows tr[data-provider="claude"] .primary-radio');
        await page.waitForFunction(() => document.querySelector('#provider-rows tr[data-provider="openai"] .primary-radio')?.checked === false);
        assert.deepEqual(fake.callsOf('storyteller.providers.setPrimary').at(-1), { id: 2 });
        list = await rows(page);
        assert.deepEqual(list.map((r) => [r.provider, r.primary]), [['openai', false], ['claude', true]]);
    });

    test('the Active toggle updates isActive', async () => {
        await page.uncheck('#provider-rows tr[data-provider="openai"] .active-toggle');
        await page.waitForFunction(() => document.querySelector('#provider-rows tr[data-provider="openai"] .active-toggle')?.checked === false);
        await new Promise((r) => setTimeout(r, 0));
        for (let i = 0; i < 50 && fake.callsOf('storyteller.providers.update').length === 0; i++) await new Promise((r) => setTimeout(r, 20));
        assert.deepEqual(fake.callsOf('storyteller.providers.update').at(-1), { id: 1, isActive: false });
    });

    test('edit shows the masked key; Change API Key rotates it after a test', async () => {
        await page.click('#provider-rows tr[data-provider="openai"] .edit');
        assert.equal(await page.textContent('#form-heading'), 'Edit OpenAI');
        await waitForText(page, '#key-hint', '••••abcd');
        assert.equal(await page.isHidden('#api-key'), true);
        assert.equal(await page.isDisabled('#provider-kind'), true);
        await page.click('#change-key');
        assert.equal(await page.isVisible('#api-key'), true);
        await page.fill('#api-key', 'sk-rotated-9876');
        await page.click('#test-connection');
        await waitForText(page, '#test-result', 'Connection successful! Model: gpt-4o');
        assert.deepEqual(fake.callsOf('storyteller.providers.test').at(-1), { id: 1, provider: 'openai', apiKey: 'sk-rotated-9876', model: 'gpt-4o' });
        await page.click('#save');
        await page.waitForSelector('#provider-form-section', { state: 'hidden' });
        assert.deepEqual(fake.callsOf('storyteller.providers.update').at(-1), { id: 1, apiKey: 'sk-rotated-9876' });
        await page.waitForFunction(() => document.querySelector('#provider-rows tr[data-provider="openai"]')?.children[2].textContent === '••••9876');
    });

    test('delete asks with the §7 text; Cancel keeps the provider, Remove deletes it', async () => {
        await page.click('#provider-rows tr[data-provider="claude"] .delete');
        await waitForText(
            page,
            '#confirm-text',
            "Remove Anthropic Claude? This will delete the stored API key and you'll need to re-enter it if you want to use this provider again.",
        );
        assert.equal(await page.textContent('#confirm-yes'), 'Remove');
        assert.equal(await page.textContent('#confirm-no'), 'Cancel');
        await page.click('#confirm-no');
        assert.equal(await page.isHidden('#confirm'), true);
        assert.equal(fake.callsOf('storyteller.providers.remove').length, 0);
        assert.equal((await rows(page)).length, 2);

        await page.click('#provider-rows tr[data-provider="claude"] .delete');
        await page.click('#confirm-yes');
        await page.waitForFunction(() => document.querySelectorAll('#provider-rows tr').length === 1);
        assert.deepEqual(fake.callsOf('storyteller.providers.remove'), [{ id: 2, confirmed: true }]);
        await page.click('#provider-rows tr[data-provider="openai"] .delete');
        await page.click('#confirm-yes');
        await waitForText(page, '#empty-state', EMPTY);
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
        assert.deepEqual(ui.seen.blockedRequests, []);
        assert.deepEqual(ui.seen.consoleErrors.filter((e) => !/Content Security Policy/.test(e)), []);
        const csp = await page.getAttribute('meta[http-equiv="Content-Security-Policy"]', 'content');
        assert.match(csp, /default-src 'none'/);
        assert.match(csp, /script-src 'nonce-[A-Za-z0-9_-]{20,}'/);
        assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    });

    test('screenshot of the page with a provider and the add form', async () => {
        await page.click('#add-provider');
        await page.fill('#api-key', 'sk-demo-1234');
        await page.click('#test-connection');
        await waitForText(page, '#test-result', 'Connection successful! Model: gpt-4o');
        await page.click('#save');
        await page.waitForSelector('#provider-rows tr');
        await page.click('#add-provider');
        await page.selectOption('#provider-kind', 'custom');
        await page.fill('#endpoint', 'http://localhost:11434/v1');
        await page.fill('#model', 'llama3.1');
        mkdirSync(artifactsDir, { recursive: true });
        await page.screenshot({ path: join(artifactsDir, 'settings-page-fake.png'), fullPage: true });
    });
});
