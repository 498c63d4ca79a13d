// The initialize parameters VS Code sends through vscode-languageclient, computed by the real
// client library rather than copied by hand: vscode-languageclient is loaded with a stand-in for
// the `vscode` module (only the editor API surface, which capability computation never calls
// into), and its own `computeClientCapabilities()` fills the capabilities exactly as it does inside
// VS Code, from every built-in feature of the installed version.
import { createRequire } from 'node:module';
import Module from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);

/** The VS Code version the extension targets (package.json engines.vscode). */
export const VSCODE_VERSION = '1.91.0';

function editorApiStandIn() {
    // Every property is itself callable and constructible: enum members, event emitters and
    // classes all resolve to this stand-in. Nothing in capability computation inspects them.
    const handler = {
        get(target, prop) {
            if (prop === 'then') return undefined; // never look like a promise
            if (prop === Symbol.toPrimitive) return () => 0;
            if (prop === 'version') return VSCODE_VERSION;
            if (prop === 'appName') return 'Visual Studio Code';
            if (prop === 'language') return 'en';
            if (!(prop in target)) target[prop] = new Proxy(function () {}, handler);
            return target[prop];
        },
        apply() {
            return new Proxy(function () {}, handler);
        },
        construct() {
            return new Proxy(function () {}, handler);
        },
    };
    return new Proxy(function () {}, handler);
}

let cached;

/**
 * `ClientCapabilities` as the StoryTeller extension sends them inside VS Code: vscode-languageclient's
 * own, plus the extension's `experimental.storyteller` (src/contract.ts).
 */
export function vscodeClientCapabilities() {
    const caps = languageClientCapabilities();
    const { CLIENT_EXPERIMENTAL } = require('../../out/src/contract.js');
    caps.experimental = { ...(caps.experimental ?? {}), ...CLIENT_EXPERIMENTAL };
    return caps;
}

/** `ClientCapabilities` as vscode-languageclient computes them inside VS Code. */
export function languageClientCapabilities() {
    if (cached) return structuredClone(cached);
    const standIn = editorApiStandIn();
    const originalLoad = Module._load;
    Module._load = function (request, parent, isMain) {
        if (request === 'vscode') return standIn;
        return originalLoad.call(this, request, parent, isMain);
    };
    try {
        const { LanguageClient } = require('vscode-languageclient/node');
        const client = new LanguageClient(
            'storyteller',
            'StoryTeller',
            { command: 'storyteller-lsp', args: ['serve'] },
            { documentSelector: [{ language: 'markdown' }, { language: 'plaintext' }] },
        );
        cached = JSON.parse(JSON.stringify(client.computeClientCapabilities()));
    } finally {
        Module._load = originalLoad;
    }
    return structuredClone(cached);
}

/** The `clientInfo` VS Code sends (`vscode.env.appName`, `vscode.version`). */
export const VSCODE_CLIENT_INFO = { name: 'Visual Studio Code', version: VSCODE_VERSION };

/** The languageclient version whose capabilities these are. */
export function languageClientVersion() {
    const main = require.resolve('vscode-languageclient/node');
    const root = main.slice(0, main.lastIndexOf('/lib/'));
    return JSON.parse(readFileSync(`${root}/package.json`, 'utf8')).version;
}
