// The settings the extension contributes must be the server's settings (src/config.rs), with the
// same defaults, ranges and choices, and the texts it shows must be the server's (src/messages.rs).
// settings-defaults.json is `Settings::default()` as JSON; a Rust test keeps it in step with
// config.rs, and this test keeps package.json in step with it. The range and text checks read the
// Rust sources as text, so they run without a Rust toolchain.
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

const configRs = readFileSync(join(repoRoot, 'src', 'config.rs'), 'utf8').replace(/\s+/g, ' ');

function rustNumber(text) {
    return Number(text.replace(/_/g, ''));
}

test('integer ranges match the ranges config.rs accepts', () => {
    const pattern = /"(\w+)" => \{? ?self\.int\(&full, v, ([\d_]+), ([\d_]+), &mut s\.(\w+)\.\w+\)/g;
    const ranges = [...configRs.matchAll(pattern)].map(([, name, min, max, group]) => ({
        key: `storyteller.${group}.${name}`,
        min: rustNumber(min),
        max: rustNumber(max),
    }));
    assert.ok(ranges.length >= 6, `found only ${ranges.length} ranges in config.rs: has its layout changed?`);
    for (const { key, min, max } of ranges) {
        const schema = properties[key];
        assert.ok(schema, `${key} is accepted by config.rs but not contributed`);
        assert.equal(schema.type, 'integer', key);
        assert.equal(schema.minimum, min, `${key} minimum`);
        assert.equal(schema.maximum, max, `${key} maximum`);
    }
    const perMinute = configRs.match(/self\.int\(&full, v, ([\d_]+), ([\d_]+), &mut per_minute\)/);
    assert.ok(perMinute, 'rateLimits range not found in config.rs');
    for (const [kind, schema] of Object.entries(properties['storyteller.rateLimits'].properties)) {
        assert.equal(schema.minimum, rustNumber(perMinute[1]), `rateLimits.${kind} minimum`);
        assert.equal(schema.maximum, rustNumber(perMinute[2]), `rateLimits.${kind} maximum`);
    }
});

test('rate limit keys are the provider kinds of the catalogue', () => {
    const catalogRs = readFileSync(join(repoRoot, 'src', 'providers', 'catalog.rs'), 'utf8');
    // The arms of `ProviderKind::as_str`: the wire names of the kinds.
    const kinds = [...catalogRs.matchAll(/ProviderKind::\w+ => "(\w+)",/g)].map((m) => m[1]);
    assert.ok(kinds.length >= 7, `found ${kinds.length} kinds in catalog.rs`);
    assert.deepEqual(Object.keys(properties['storyteller.rateLimits'].properties).sort(), [...kinds].sort());
});

test('choices match the values config.rs accepts', () => {
    const stores = [...configRs.matchAll(/Some\("(\w+)"\) => s\.credential_store/g)].map((m) => m[1]);
    assert.deepEqual(properties['storyteller.credentialStore'].enum, stores);
    const levels = configRs.match(/"logLevel" => match v\.as_str\(\) \{ Some\(level @ \(([^)]*)\)\)/);
    assert.ok(levels, 'logLevel choices not found in config.rs');
    const accepted = [...levels[1].matchAll(/"(\w+)"/g)].map((m) => m[1]);
    assert.deepEqual(properties['storyteller.logLevel'].enum, accepted);
});

test('every top-level setting name is one config.rs decodes', () => {
    const decoded = new Set([...configRs.matchAll(/ "(\w+)" => /g)].map((m) => m[1]));
    for (const [key] of serverProperties()) {
        for (const part of key.split('.').slice(1)) {
            if (key.startsWith('storyteller.rateLimits')) break;
            assert.ok(decoded.has(part), `${key}: "${part}" is not decoded by config.rs`);
        }
    }
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
