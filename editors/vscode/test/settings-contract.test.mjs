// The settings the extension contributes must be the server's settings, and the texts it shows
// must be the server's (src/messages.rs). tests/editors_settings.rs (Rust) holds package.json,
// settings-defaults.json and the Helix snippet to `config::Settings` — keys, defaults, ranges,
// choices — through the server's own decoder; this test checks what only the extension knows
// (descriptions, the extension-only keys) and, reading messages.rs as text, the shown texts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { extensionDir, repoRoot } from './support/paths.mjs';

const require = createRequire(import.meta.url);
const packageJson = JSON.parse(readFileSync(join(extensionDir, 'package.json'), 'utf8'));
const defaults = JSON.parse(readFileSync(join(extensionDir, 'settings-defaults.json'), 'utf8'));
const properties = packageJson.contributes.configuration.properties;
const EXTENSION_ONLY = new Set(['storyteller.serverPath']);

function serverProperties() {
    return Object.entries(properties).filter(([key]) => !EXTENSION_ONLY.has(key));
}

/** package.json's dotted keys folded into the nested object VS Code hands the server. */
function nestedDefaults() {
    const out = {};
    for (const [key, schema] of serverProperties()) {
        const path = key.split('.').slice(1);
        let node = out;
        for (const part of path.slice(0, -1)) node = node[part] ??= {};
        node[path.at(-1)] = schema.default;
    }
    return out;
}

test('package.json contributes every server setting with the default of settings-defaults.json', () => {
    assert.deepEqual(nestedDefaults(), defaults);
});

test('every contributed setting has a description and a type', () => {
    for (const [key, schema] of Object.entries(properties)) {
        assert.ok(schema.description || schema.markdownDescription, `${key} has no description`);
        assert.ok(schema.type, `${key} has no type`);
    }
});

test('extension-only settings are stripped before the server sees them', () => {
    const { serverSettings, EXTENSION_ONLY_KEYS } = require('../out/src/settings.js');
    for (const key of EXTENSION_ONLY) {
        assert.ok(EXTENSION_ONLY_KEYS.includes(key.split('.')[1]), `${key} is not stripped`);
    }
    const sent = serverSettings({ ...defaults, serverPath: '/opt/storyteller-lsp' });
    assert.deepEqual(sent, defaults);
    assert.deepEqual(serverSettings(null), {});
});

// ---- texts ---------------------------------------------------------------------------------

const messagesRs = readFileSync(join(repoRoot, 'src', 'messages.rs'), 'utf8');

function rustConst(name) {
    const m = messagesRs.match(new RegExp(`pub const ${name}: &str =\\s*"((?:[^"\\\\]|\\\\.)*)";`));
    assert.ok(m, `messages.rs has no const ${name}`);
    return m[1].replace(/\\"/g, '"');
}

function rustFormat(fnName) {
    const start = messagesRs.indexOf(`pub fn ${fnName}(`);
    assert.ok(start >= 0, `messages.rs has no fn ${fnName}`);
    const m = messagesRs.slice(start).match(/format!\(\s*"((?:[^"\\]|\\.)*)"/);
    assert.ok(m, `fn ${fnName} has no format!`);
    return m[1].replace(/\\"/g, '"');
}

test('the texts the extension shows are those of src/messages.rs', () => {
    const texts = require('../out/src/texts.js');
    const cases = [
        [texts.NOT_CONFIGURED, rustConst('NOT_CONFIGURED')],
        [texts.EMPTY_PROVIDER_LIST, rustConst('EMPTY_PROVIDER_LIST')],
        [texts.PROVIDER_ADDED, rustConst('PROVIDER_ADDED')],
        [texts.TESTING_CONNECTION, rustConst('TESTING_CONNECTION')],
        [texts.OFFLINE, rustConst('OFFLINE')],
        [texts.ALL_FAILED, rustConst('ALL_FAILED')],
        [texts.TEST_OK, rustFormat('test_ok')],
        [texts.CONFIRM_REMOVE, rustFormat('confirm_remove')],
        [texts.Actions.configureAiProvider, rustConst('CONFIGURE_AI_PROVIDER')],
        [texts.Actions.maybeLater, rustConst('MAYBE_LATER')],
        [texts.Actions.remove, rustConst('REMOVE')],
        [texts.Actions.cancel, rustConst('CANCEL')],
    ];
    for (const [ours, server] of cases) {
        assert.equal(ours, server);
    }
});

test('fill replaces known placeholders only', () => {
    const { fill, CONFIRM_REMOVE, TEST_OK } = require('../out/src/texts.js');
    assert.equal(fill(TEST_OK, { model: 'gpt-4o' }), 'Connection successful! Model: gpt-4o');
    assert.match(fill(CONFIRM_REMOVE, { provider: 'OpenAI' }), /^Remove OpenAI\? This will delete/);
    assert.equal(fill('{a} {b}', { a: 'x' }), 'x {b}');
});

test('the Neovim plugin shows the same texts', () => {
    const texts = require('../out/src/texts.js');
    const lua = readFileSync(join(repoRoot, 'editors', 'neovim', 'lua', 'storyteller', 'texts.lua'), 'utf8');
    const entries = Object.fromEntries([...lua.matchAll(/^\s*(\w+) = "((?:[^"\\]|\\.)*)",$/gm)].map((m) => [m[1], m[2]]));
    assert.deepEqual(entries, {
        empty_list: texts.EMPTY_PROVIDER_LIST,
        testing_connection: texts.TESTING_CONNECTION,
        test_ok: texts.TEST_OK,
        provider_added: texts.PROVIDER_ADDED,
        confirm_remove: texts.CONFIRM_REMOVE,
        not_configured: texts.NOT_CONFIGURED,
        offline: texts.OFFLINE,
    });
});
