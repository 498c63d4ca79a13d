// A real VS Code: code-server 4.100.3 (VS Code 1.100.3) with the built .vsix installed, driven by
// playwright-core and Debian's Chromium headless, the way an author uses it: the extension starts
// the server and the status bar says "set up AI"; the AI Providers page adds a provider against the
// simulator (Test Connection, Save); ghost text appears after typing and Tab accepts it; Ctrl+.
// lists the actions at the cursor and on a selection; a rewrite applies and one undo restores it;
// the output channel shows the server's lines at their true levels.
//
// Everything is throwaway and local: code-server on 127.0.0.1 with its own user-data and extensions
// folders and --auth none, the server with its own data dir and the encrypted-file key store with a
// throwaway key, the simulator on 127.0.0.1. Every process is stopped when the test ends, passed
// or not. A screenshot of each step goes to target/editors/vscode-real/ (kept for failures).
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { artifactsDir, chromiumPath, repoRoot, serverBinary, serverBinaryExists } from '../vscode/test/support/paths.mjs';
import { startSimulator, testEnvironment } from '../vscode/test/support/real-server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const CODE_SERVER = resolve(here, 'node_modules', '.bin', 'code-server');
const VSIX = resolve(repoRoot, 'target', 'editors', 'storyteller-lsp.vsix');
const SHOTS = join(artifactsDir, 'vscode-real');
const GOOD_KEY = 'sk-real-editor-good-key-5678';
const CHAPTER = '# Chapter One\n\nMara pushed open the lighthouse door. The stairs spiralled up into the dark.\n';
const STEP_MS = 30000;

/** A free port on 127.0.0.1, chosen by the kernel. */
async function freePort() {
    const net = await import('node:net');
    return new Promise((resolvePort, reject) => {
        const server = net.createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
            const { port } = server.address();
            server.close(() => resolvePort(port));
        });
    });
}

/** Monaco renders spaces as no-break spaces; lines are divs. */
function plain(text) {
    return text.replace(/\u00a0/g, ' ');
}

describe('StoryTeller in a real VS Code (code-server)', () => {
    let sim;
    let codeServer;
    let codeServerLog = '';
    let browser;
    let page;
    let root;
    let step = 0;

    async function shot(name) {
        step += 1;
        await page.screenshot({ path: join(SHOTS, `${String(step).padStart(2, '0')}-${name}.png`) });
    }

    /** Runs a command from the command palette (F1) by its title. */
    async function runCommand(title) {
        await page.keyboard.press('F1');
        const input = page.locator('.quick-input-widget input');
        await input.waitFor({ state: 'visible', timeout: STEP_MS });
        await input.fill(`>${title}`);
        await page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first().waitFor({ timeout: STEP_MS });
        await page.keyboard.press('Enter');
    }

    /** The manuscript editor's visible text. */
    async function manuscript() {
        const text = await page.locator('.editor-group-container .monaco-editor .view-lines').first().innerText();
        return plain(text);
    }

    async function focusManuscript() {
        await page.locator('.editor-group-container .monaco-editor .view-lines').first().click();
    }

    /**
     * Ctrl+. once the editor has settled on the cursor or selection: its light bulb (an automatic
     * request for this very selection) is up, as it is when an author reaches for the keys. VS Code
     * draws the bulb beside the text (a content widget) or, where that would cover the text or the
     * cursor, in the gutter (a glyph-margin decoration); which one depends on the line and on
     * timing, so either will do.
     */
    async function ctrlDot() {
        const bulb = page
            .locator(
                '.editor-group-container .lightBulbWidget, ' +
                    '.editor-group-container .glyph-margin-widgets [class*="codicon-gutter-lightbulb"]',
            )
            .filter({ visible: true });
        await bulb.first().waitFor({ state: 'visible', timeout: STEP_MS });
        await page.waitForTimeout(300);
        await page.keyboard.press('Control+.');
    }

    /** The open code action menu's rows, or [] once it is gone. */
    async function actionMenu() {
        const widget = page.locator('.action-widget');
        await widget.waitFor({ state: 'visible', timeout: STEP_MS });
        await page.locator('.action-widget .monaco-list-row.action').first().waitFor({ timeout: STEP_MS });
        return (await page.locator('.action-widget .monaco-list-row.action').allInnerTexts()).map((t) => plain(t).trim());
    }

    /** Chooses the action menu's row titled `title` with the keyboard, as an author would. */
    async function chooseAction(title) {
        for (let i = 0; i < 30; i += 1) {
            const focused = plain(await page.locator('.action-widget .monaco-list-row.action.focused').first().innerText()).trim();
            if (focused.includes(title)) {
                await page.keyboard.press('Enter');
                return;
            }
            await page.keyboard.press('ArrowDown');
        }
        throw new Error(`no action titled ${title}`);
    }

    before(async () => {
        assert.ok(serverBinaryExists(), `server binary not found at ${serverBinary()}`);
        rmSync(SHOTS, { recursive: true, force: true });
        mkdirSync(SHOTS, { recursive: true });
        root = mkdtempSync(join(tmpdir(), 'storyteller-real-editor-'));
        const userData = join(root, 'user-data');
        const extensions = join(root, 'extensions');
        const workspace = join(root, 'novel');
        const dataDir = join(root, 'storyteller-data');
        for (const dir of [userData, join(userData, 'User'), extensions, workspace, dataDir]) mkdirSync(dir, { recursive: true });
        writeFileSync(join(workspace, 'chapter-01.md'), CHAPTER);
        writeFileSync(
            join(userData, 'User', 'settings.json'),
            JSON.stringify(
                {
                    'storyteller.serverPath': serverBinary(),
                    'storyteller.dataDir': dataDir,
                    'storyteller.credentialStore': 'file',
                    'storyteller.logLevel': 'info',
                    'storyteller.inline.debounceMs': 0,
                    'storyteller.inline.timeoutMs': 30000,
                    'workbench.startupEditor': 'none',
                    'workbench.tips.enabled': false,
                    'workbench.enableExperiments': false,
                    'security.workspace.trust.enabled': false,
                    'telemetry.telemetryLevel': 'off',
                    'update.mode': 'none',
                    'extensions.autoCheckUpdates': false,
                    'extensions.autoUpdate': false,
                    'editor.inlineSuggest.enabled': true,
                    'editor.quickSuggestions': { other: false, comments: false, strings: false },
                    'editor.lightbulb.enabled': 'on',
                    'files.autoSave': 'off',
                },
                null,
                2,
            ),
        );
        sim = await startSimulator();

        // The server inherits code-server's environment: the file store's key, no vendor keys.
        const env = { ...testEnvironment(dataDir), STORYTELLER_LOG: 'info' };
        delete env.VSCODE_IPC_HOOK_CLI;
        // No marketplace: code-server's extension gallery points at a closed loopback port, so
        // nothing in the test leaves 127.0.0.1.
        env.EXTENSIONS_GALLERY = JSON.stringify({ serviceUrl: 'http://127.0.0.1:9/gallery', itemUrl: 'http://127.0.0.1:9/item' });
        const installed = spawnSync(
            CODE_SERVER,
            ['--user-data-dir', userData, '--extensions-dir', extensions, '--install-extension', VSIX],
            { env, encoding: 'utf8', timeout: 120000 },
        );
        assert.equal(installed.status, 0, `code-server --install-extension: ${installed.stdout}${installed.stderr}`);

        const port = await freePort();
        codeServer = spawn(
            CODE_SERVER,
            [
                '--bind-addr', `127.0.0.1:${port}`,
                '--auth', 'none',
                '--user-data-dir', userData,
                '--extensions-dir', extensions,
                '--disable-telemetry',
                '--disable-update-check',
                '--disable-workspace-trust',
                '--disable-getting-started-override',
                workspace,
            ],
            { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
        );
        // For editors/test.sh: what to stop if this test is itself killed before `after` runs.
        if (process.env.STORYTELLER_REAL_EDITOR_PGID_FILE) {
            writeFileSync(process.env.STORYTELLER_REAL_EDITOR_PGID_FILE, String(codeServer.pid));
        }
        const listening = new Promise((resolveListening, reject) => {
            const timer = setTimeout(() => reject(new Error(`code-server did not start: ${codeServerLog}`)), 60000);
            const seen = (chunk) => {
                codeServerLog += chunk;
                if (/HTTP server listening on/.test(codeServerLog)) {
                    clearTimeout(timer);
                    resolveListening();
                }
            };
            codeServer.stdout.on('data', seen);
            codeServer.stderr.on('data', seen);
            codeServer.on('exit', (code) => reject(new Error(`code-server exited (${code}): ${codeServerLog}`)));
        });
        await listening;

        browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox', '--disable-gpu'] });
        const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
        page = await context.newPage();
        page.setDefaultTimeout(STEP_MS);
        await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
        await page.locator('.monaco-workbench').waitFor({ timeout: 60000 });
    });

    // The screen as each test left it: what a failure looked like.
    afterEach(async (t) => {
        const name = t.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 40);
        await page?.screenshot({ path: join(SHOTS, `end-${name}.png`) }).catch(() => {});
    });

    after(async () => {
        await browser?.close().catch(() => {});
        if (codeServer && codeServer.exitCode === null) {
            // code-server, its extension host and the language server are one process group.
            try {
                process.kill(-codeServer.pid, 'SIGTERM');
            } catch {
                // Already gone.
            }
            await new Promise((r) => setTimeout(r, 500));
            try {
                process.kill(-codeServer.pid, 'SIGKILL');
            } catch {
                // Already gone.
            }
        }
        sim?.stop();
        if (root) {
            // code-server's logs (the StoryTeller channel among them) beside the screenshots.
            const logs = join(root, 'user-data', 'logs');
            if (existsSync(logs)) cpSync(logs, join(SHOTS, 'code-server-logs'), { recursive: true });
            rmSync(root, { recursive: true, force: true });
        }
    });

    test('opening a chapter activates the extension, starts the server, and the status bar says "set up AI"', async () => {
        await page.keyboard.press('Control+P');
        const input = page.locator('.quick-input-widget input');
        await input.waitFor({ state: 'visible' });
        await input.fill('chapter-01.md');
        await page.locator('.quick-input-list .monaco-list-row', { hasText: 'chapter-01.md' }).first().waitFor();
        await page.keyboard.press('Enter');
        await page.locator('.editor-group-container .monaco-editor .view-lines', { hasText: 'lighthouse door' }).first().waitFor();
        const status = page.locator('.statusbar-item', { hasText: 'StoryTeller: set up AI' });
        await status.first().waitFor({ timeout: 60000 });
        await shot('status-set-up-ai');
    });

    test('the AI Providers page adds a provider against the simulator: Test Connection, then Save', async () => {
        await runCommand('StoryTeller: Manage AI Providers');
        const webview = page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
        await webview.locator('#add-provider').click({ timeout: 60000 });
        await webview.locator('#provider-kind').selectOption('custom');
        await webview.locator('#endpoint').fill(sim.endpoint('custom'));
        await webview.locator('#endpoint').press('Tab');
        await webview.locator('#model').fill('storyteller-sim');
        await webview.locator('#api-key').fill(GOOD_KEY);
        await webview.locator('#test-connection').click();
        await webview.locator('#test-result', { hasText: 'Connection successful!' }).waitFor();
        await shot('providers-tested');
        await webview.locator('#save').click();
        await webview.locator('#provider-rows tr').first().waitFor();
        await shot('providers-saved');
        const status = page.locator('.statusbar-item', { hasText: 'StoryTeller' });
        await page.waitForFunction(
            () => [...document.querySelectorAll('.statusbar-item')].some((e) => /StoryTeller/.test(e.textContent) && !/set up AI/.test(e.textContent)),
            undefined,
            { timeout: STEP_MS },
        );
        assert.doesNotMatch(await status.first().innerText(), /set up AI/);
    });

    test('ghost text appears after typing and Tab accepts it', async () => {
        // Back to the chapter (the page is a tab of its own).
        await page.locator('.tabs-container .tab', { hasText: 'chapter-01.md' }).click();
        await focusManuscript();
        await page.keyboard.press('Control+End');
        await page.keyboard.press('ArrowUp');
        await page.keyboard.press('End');
        const before = await manuscript();
        await page.keyboard.type(' She', { delay: 30 });
        const ghost = page.locator('.editor-group-container .ghost-text-decoration, .editor-group-container .ghost-text');
        await ghost.first().waitFor({ timeout: STEP_MS });
        const suggested = plain(await ghost.first().innerText()).trim();
        assert.ok(suggested.length > 0, 'the ghost text has words');
        await shot('ghost-text');
        await page.keyboard.press('Tab');
        await page.waitForFunction(() => document.querySelectorAll('.editor-group-container .ghost-text-decoration').length === 0);
        const after = await manuscript();
        assert.ok(after.includes(`dark. She`), after);
        assert.ok(after.includes(suggested.slice(0, 12)), `accepted text in the editor: ${suggested} / ${after}`);
        assert.notEqual(after, before);
        await shot('ghost-text-accepted');
    });

    test('Ctrl+. lists the writing actions at the cursor', async () => {
        await focusManuscript();
        await page.keyboard.press('Control+End');
        await ctrlDot();
        const rows = await actionMenu();
        await shot('actions-at-cursor');
        assert.ok(rows.some((r) => r.includes('Continue scene')), JSON.stringify(rows));
        assert.ok(rows.some((r) => r.includes('Expand worldbuilding')), JSON.stringify(rows));
        await page.keyboard.press('Escape');
    });

    test('Ctrl+. on a selection lists the rewrites; a rewrite applies and one undo restores the text', async () => {
        await focusManuscript();
        // Line 3 of the chapter: "Mara pushed open …", selected whole.
        await page.keyboard.press('Control+Home');
        await page.keyboard.press('ArrowDown');
        await page.keyboard.press('ArrowDown');
        await page.keyboard.press('Home');
        await page.keyboard.press('Shift+End');
        const before = await manuscript();
        await ctrlDot();
        const rows = await actionMenu();
        await shot('actions-on-selection');
        assert.ok(rows.some((r) => r.includes('Rewrite selection: concise')), JSON.stringify(rows));
        await chooseAction('Rewrite selection: concise');
        await page.waitForFunction(
            (old) => document.querySelector('.editor-group-container .monaco-editor .view-lines').innerText.replace(/\u00a0/g, ' ') !== old,
            before,
            { timeout: STEP_MS },
        );
        const rewritten = await manuscript();
        assert.notEqual(rewritten, before);
        await shot('rewrite-applied');
        await focusManuscript();
        await page.keyboard.press('Control+Z');
        await page.waitForFunction(
            (old) => document.querySelector('.editor-group-container .monaco-editor .view-lines').innerText.replace(/\u00a0/g, ' ') === old,
            before,
            { timeout: STEP_MS },
        );
        await shot('rewrite-undone');
    });

    test('the StoryTeller output channel shows the server lines at their levels, not all as [error]', async () => {
        await runCommand('Output: Show Output Channels...');
        await page.locator('.quick-input-list .monaco-list-row', { hasText: 'StoryTeller' }).first().waitFor();
        await page.locator('.quick-input-widget input').fill('StoryTeller');
        await page.keyboard.press('Enter');
        const output = page.locator('.part.panel .monaco-editor .view-lines').first();
        const outputText = async () => plain(await output.innerText());
        const shows = (pattern) =>
            page.waitForFunction(
                (source) => new RegExp(source).test((document.querySelector('.part.panel .monaco-editor .view-lines')?.textContent ?? '').replace(/\u00a0/g, ' ')),
                pattern.source,
                { timeout: STEP_MS },
            );
        // The latest lines: the provider just added, logged at info by the server.
        await shows(/\[info\] provider added provider=custom/);
        await shot('output-channel');
        assert.doesNotMatch(await outputText(), /\[error\]/);
        // The first line of the session, found with the view's filter.
        await page.locator('.part.panel').getByPlaceholder('Filter').fill('initialize client');
        await shows(/\[info\] initialize client=/);
        const text = await outputText();
        await shot('output-channel-filtered');
        assert.doesNotMatch(text, /\[error\]/, text);
        assert.doesNotMatch(text, /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/, "the server's own timestamp is taken off");
    });
});
