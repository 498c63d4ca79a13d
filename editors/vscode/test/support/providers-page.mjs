// Opens the AI Providers page in headless Debian Chromium exactly as VS Code would show it: the
// HTML from renderProvidersPage (same CSP, same nonce rule), the compiled page script and style
// from this extension, and `acquireVsCodeApi` replaced by a bridge to the real ProvidersPageHost,
// whose `execute` is supplied by the test (a real server's executeCommand). Every request
// the page makes goes to a fake origin answered from disk; anything else is refused, so the page
// cannot reach any network.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { chromiumPath, extensionDir } from './paths.mjs';

const require = createRequire(import.meta.url);
const { renderProvidersPage } = require('../../out/src/providersPage/html.js');
const { ProvidersPageHost } = require('../../out/src/providersPage/host.js');
const { PAGE_TEXTS } = require('../../out/src/texts.js');

const ORIGIN = 'https://storyteller-webview.test';
const FILES = {
    '/out/webview/main.js': ['out/webview/main.js', 'text/javascript'],
    '/media/providers.css': ['media/providers.css', 'text/css'],
};

export const CHROMIUM_FLAGS = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
];

/**
 * @param {{ execute: (command: string, args: object) => Promise<unknown> }} options
 * @returns the Playwright page plus what the bridge saw.
 */
export async function openProvidersPage({ execute }) {
    const profile = mkdtempSync(join(tmpdir(), 'storyteller-chromium-'));
    const context = await chromium.launchPersistentContext(profile, {
        executablePath: chromiumPath(),
        headless: true,
        args: CHROMIUM_FLAGS,
        viewport: { width: 1000, height: 720 },
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const seen = { fromPage: [], toPage: [], stateWrites: [], cspViolations: [], consoleErrors: [], blockedRequests: [] };

    await context.route('**/*', async (route) => {
        const url = new URL(route.request().url());
        if (url.origin !== ORIGIN) {
            seen.blockedRequests.push(url.href);
            return route.abort();
        }
        if (url.pathname === '/index.html') {
            const html = renderProvidersPage({
                cspSource: ORIGIN,
                scriptUri: `${ORIGIN}/out/webview/main.js`,
                styleUri: `${ORIGIN}/media/providers.css`,
                texts: PAGE_TEXTS,
            });
            return route.fulfill({ status: 200, contentType: 'text/html', body: html });
        }
        const file = FILES[url.pathname];
        if (!file) return route.fulfill({ status: 404, body: '' });
        return route.fulfill({ status: 200, contentType: file[1], body: readFileSync(join(extensionDir, file[0])) });
    });

    const host = new ProvidersPageHost(execute, (message) => {
        seen.toPage.push(message);
        return page.evaluate((m) => window.postMessage(m, '*'), message).catch(() => undefined);
    });
    await page.exposeFunction('__storytellerToHost', (message) => {
        seen.fromPage.push(message);
        return host.receive(message);
    });
    await page.exposeFunction('__storytellerStateWrite', (json) => {
        seen.stateWrites.push(json);
    });
    await page.addInitScript(() => {
        // What VS Code injects into a webview: postMessage to the extension host, and a state
        // store that survives hiding (the page must never put a key there).
        let state;
        window.acquireVsCodeApi = () => ({
            postMessage: (message) => window.__storytellerToHost(message),
            getState: () => state,
            setState: (next) => {
                state = next;
                window.__storytellerStateWrite(JSON.stringify(next));
                return next;
            },
        });
        document.addEventListener('securitypolicyviolation', (e) => {
            window.__cspViolations = window.__cspViolations || [];
            window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
        });
    });
    page.on('console', (msg) => {
        if (msg.type() === 'error') seen.consoleErrors.push(msg.text());
    });
    page.on('pageerror', (error) => seen.consoleErrors.push(String(error)));

    await page.goto(`${ORIGIN}/index.html`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });

    return {
        page,
        host,
        seen,
        async cspViolations() {
            return page.evaluate(() => window.__cspViolations || []);
        },
        async close() {
            await context.close();
            rmSync(profile, { recursive: true, force: true });
        },
    };
}

/** Waits until the element's text equals (string) or matches (RegExp) `expected`. */
export async function waitForText(page, selector, expected, timeout = 10000) {
    const source = expected instanceof RegExp ? { re: expected.source, flags: expected.flags } : { text: expected };
    try {
        await page.waitForFunction(
            ({ selector, source }) => {
                const el = document.querySelector(selector);
                if (!el || el.hidden) return false;
                const text = el.textContent ?? '';
                return source.text !== undefined ? text === source.text : new RegExp(source.re, source.flags).test(text);
            },
            { selector, source },
            { timeout },
        );
    } catch (error) {
        const actual = await page.evaluate((s) => {
            const el = document.querySelector(s);
            return el ? `${el.hidden ? '[hidden] ' : ''}${el.textContent}` : '(no element)';
        }, selector);
        throw new Error(`${selector}: expected ${expected}, found ${JSON.stringify(actual)} (${error.message.split('\n')[0]})`);
    }
}

/** Text of every table row: `[{ id, name, model, key, active, primary }]`. */
export async function rows(page) {
    return page.$$eval('#provider-rows tr', (trs) =>
        trs.map((tr) => ({
            id: tr.dataset.id,
            provider: tr.dataset.provider,
            name: tr.children[0].textContent,
            model: tr.children[1].textContent,
            key: tr.children[2].textContent,
            active: tr.querySelector('.active-toggle').checked,
            primary: tr.querySelector('.primary-radio').checked,
        })),
    );
}
