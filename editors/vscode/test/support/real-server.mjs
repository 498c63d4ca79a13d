// A real `storyteller-lsp` process over stdio (vscode-jsonrpc, as vscode-languageclient uses it) and
// the real provider simulator (`storyteller-lsp simulator`) on 127.0.0.1. Every process gets a fresh
// data dir, the encrypted-file key store with a throwaway key, and no vendor keys, so no test
// touches a keychain, a real data dir or a real provider. A start that fails throws: a missing
// binary or a server that cannot serve is a failed test, never a skipped one.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import { serverBinary, serverBinaryExists } from './paths.mjs';

const VENDOR_KEY_VARS = ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'GEMINI_API_KEY', 'DEEPSEEK_API_KEY', 'YANDEX_API_KEY', 'YANDEX_FOLDER_ID', 'SCW_SECRET_KEY'];

/** The environment for a test process: no real vendor keys, a private data dir, the file store. */
export function testEnvironment(dataDir) {
    const env = { ...process.env, STORYTELLER_DATA_DIR: dataDir, STORYTELLER_CREDENTIALS_KEY: 'editors-test-credentials-key', STORYTELLER_LOG: 'warn' };
    for (const name of VENDOR_KEY_VARS) delete env[name];
    return env;
}

function withTimeout(promise, ms, what) {
    let timer;
    return Promise.race([
        promise.finally(() => clearTimeout(timer)),
        new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
        }),
    ]);
}

function requireBinary() {
    if (!serverBinaryExists()) {
        throw new Error(`server binary not found at ${serverBinary()} (cargo build, or set STORYTELLER_BIN)`);
    }
}

/** Starts `storyteller-lsp simulator`; resolves to `{ base, endpoint(kind), control, stop }`. */
export async function startSimulator() {
    requireBinary();
    const dataDir = mkdtempSync(join(tmpdir(), 'storyteller-sim-'));
    const proc = spawn(serverBinary(), ['simulator'], { stdio: ['pipe', 'pipe', 'pipe'], env: testEnvironment(dataDir) });
    let output = '';
    const base = await new Promise((resolve) => {
        const timer = setTimeout(() => resolve(undefined), 15000);
        const done = (value) => {
            clearTimeout(timer);
            resolve(value);
        };
        proc.stdout.on('data', (chunk) => {
            output += chunk;
            const m = output.match(/storyteller simulator listening on (http:\/\/127\.0\.0\.1:\d+)/);
            if (m) done(m[1]);
        });
        proc.on('exit', () => done(undefined));
        proc.on('error', () => done(undefined));
    });
    const stop = () => {
        proc.stdin.end();
        proc.kill();
        rmSync(dataDir, { recursive: true, force: true });
    };
    if (!base) {
        stop();
        throw new Error(`\`storyteller-lsp simulator\` did not start: it printed ${JSON.stringify(output.trim().split('\n')[0] ?? '')}`);
    }
    return {
        base,
        /** The endpoint of a provider kind under the simulator (src/simulator/mod.rs). */
        endpoint: (kind) => `${base}${SIMULATOR_PREFIXES[kind]}`,
        /** One call of the control API (`/_sim/...`); resolves to the decoded JSON or null. */
        async control(method, path, body) {
            const response = await fetch(`${base}${path}`, {
                method,
                headers: { 'Content-Type': 'application/json' },
                body: body === undefined ? undefined : JSON.stringify(body),
                signal: AbortSignal.timeout(10000),
            });
            if (!response.ok) throw new Error(`simulator ${method} ${path}: HTTP ${response.status}`);
            const text = await response.text();
            return text.trim() ? JSON.parse(text) : null;
        },
        stop,
    };
}

const SIMULATOR_PREFIXES = {
    openai: '/openai/v1',
    deepseek: '/deepseek',
    scaleway: '/scaleway/v1',
    custom: '/custom/v1',
    claude: '/claude/v1',
    gemini: '/gemini/v1beta',
    yandex: '/yandex/foundationModels/v1',
};

/**
 * Starts the server and runs `initialize` with `capabilities`; resolves to a session object.
 * `onApplyEdit(params)` answers `workspace/applyEdit`, `onShowMessageRequest(params)` the message
 * requests, `onStatus(report)` sees every `storyteller/status`; `settings` is the storyteller
 * section (sent as initializationOptions and answered to `workspace/configuration`).
 */
export async function startServer({ capabilities, clientInfo, settings = {}, rootUri, onApplyEdit, onShowMessageRequest, onStatus }) {
    requireBinary();
    const dataDir = mkdtempSync(join(tmpdir(), 'storyteller-editors-'));
    const proc = spawn(serverBinary(), ['serve'], { stdio: ['pipe', 'pipe', 'pipe'], env: testEnvironment(dataDir) });
    let stderr = '';
    proc.stderr.on('data', (chunk) => {
        stderr = (stderr + chunk).slice(-4000);
    });
    const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    const connection = createMessageConnection(new StreamMessageReader(proc.stdout), new StreamMessageWriter(proc.stdin));
    const seen = { messages: [], status: [], progress: [], openSettings: [], messageRequests: [], applyEdits: [] };
    const fullSettings = { storyteller: { credentialStore: 'file', ...settings } };

    connection.onRequest('workspace/configuration', (params) => params.items.map((item) => (item.section === 'storyteller' ? fullSettings.storyteller : null)));
    connection.onRequest('window/workDoneProgress/create', () => null);
    connection.onRequest('client/registerCapability', () => null);
    connection.onRequest('client/unregisterCapability', () => null);
    connection.onRequest('workspace/applyEdit', async (params) => {
        seen.applyEdits.push(params);
        return onApplyEdit ? onApplyEdit(params) : { applied: false, failureReason: 'no editor in this test' };
    });
    connection.onRequest('window/showMessageRequest', (params) => {
        seen.messageRequests.push(params);
        return onShowMessageRequest ? onShowMessageRequest(params) : null;
    });
    connection.onNotification('window/showMessage', (params) => seen.messages.push(params));
    connection.onNotification('window/logMessage', () => undefined);
    connection.onNotification('$/progress', (params) => seen.progress.push(params));
    connection.onNotification('storyteller/status', (params) => {
        seen.status.push(params);
        onStatus?.(params);
    });
    connection.onNotification('storyteller/openSettings', (params) => seen.openSettings.push(params ?? {}));
    connection.onError(() => undefined);
    connection.listen();

    const cleanup = () => {
        connection.dispose();
        proc.kill();
        rmSync(dataDir, { recursive: true, force: true });
    };

    let initResult;
    try {
        initResult = await Promise.race([
            withTimeout(
                connection.sendRequest('initialize', {
                    processId: process.pid,
                    clientInfo,
                    locale: 'en',
                    rootPath: rootUri ? new URL(rootUri).pathname : null,
                    rootUri: rootUri ?? null,
                    workspaceFolders: rootUri ? [{ uri: rootUri, name: 'manuscript' }] : null,
                    capabilities,
                    initializationOptions: fullSettings,
                    trace: 'off',
                }),
                15000,
                'initialize',
            ),
            exited.then(({ code }) => {
                throw new Error(`the server exited with code ${code} before answering initialize`);
            }),
        ]);
    } catch (error) {
        cleanup();
        throw new Error(`${serverBinary()} did not answer initialize: ${error.message}\n${stderr}`);
    }
    await connection.sendNotification('initialized', {});

    return {
        connection,
        initResult,
        seen,
        dataDir,
        stderr: () => stderr,
        execute(command, args = {}) {
            return connection.sendRequest('workspace/executeCommand', { command, arguments: [args] });
        },
        async shutdown() {
            await withTimeout(connection.sendRequest('shutdown'), 10000, 'shutdown');
            await connection.sendNotification('exit');
            const { code } = await withTimeout(exited, 10000, 'exit');
            connection.dispose();
            rmSync(dataDir, { recursive: true, force: true });
            return code;
        },
        kill: cleanup,
    };
}
