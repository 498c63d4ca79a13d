// A real `storyteller-lsp` process over stdio (vscode-jsonrpc, as vscode-languageclient uses it) and
// the real provider simulator (`storyteller-lsp simulator`) on 127.0.0.1. Each start returns a
// `skip` reason instead of throwing when the binary lacks the feature, so the tests say precisely
// what the server is missing until it lands.
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

/** Starts `storyteller-lsp simulator`; resolves to `{ base, stop }` or `{ skip }`. */
export async function startSimulator() {
    if (!serverBinaryExists()) return { skip: `server binary not found at ${serverBinary()} (cargo build, or set STORYTELLER_BIN)` };
    const proc = spawn(serverBinary(), ['simulator'], { stdio: ['pipe', 'pipe', 'pipe'], env: testEnvironment(tmpdir()) });
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
    if (!base) {
        proc.kill();
        const said = output.trim().split('\n')[0] || '(nothing)';
        return { skip: `\`storyteller-lsp simulator\` is not available yet: it printed ${JSON.stringify(said)} instead of "storyteller simulator listening on http://127.0.0.1:PORT"` };
    }
    return {
        base,
        endpoint: (kind) => ({ openai: `${base}/openai/v1`, custom: `${base}/custom/v1`, claude: `${base}/claude/v1` })[kind],
        stop() {
            proc.stdin.end();
            proc.kill();
        },
    };
}

/**
 * Starts the server and runs `initialize` with `capabilities`. Resolves to a session object or to
 * `{ skip }` when the binary does not speak LSP yet.
 * `onApplyEdit(params)` answers `workspace/applyEdit`; `settings` is the storyteller section.
 */
export async function startServer({ capabilities, clientInfo, settings = {}, rootUri, onApplyEdit, onShowMessageRequest }) {
    if (!serverBinaryExists()) return { skip: `server binary not found at ${serverBinary()} (cargo build, or set STORYTELLER_BIN)` };
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
    connection.onNotification('storyteller/status', (params) => seen.status.push(params));
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
        return { skip: `${serverBinary()} does not serve LSP yet (${error.message})` };
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

/** Why the server cannot run a test yet, or undefined when it has everything `needs` lists. */
export function missingFeatures(initResult, { inline = false, completion = false, codeActions = false, commands = [] }) {
    const caps = initResult?.capabilities ?? {};
    const missing = [];
    if (inline && !caps.inlineCompletionProvider) missing.push('it does not advertise inlineCompletionProvider');
    if (completion && !caps.completionProvider) missing.push('it does not advertise completionProvider');
    if (codeActions && !caps.codeActionProvider) missing.push('it does not advertise codeActionProvider');
    const advertised = caps.executeCommandProvider?.commands ?? [];
    const absent = commands.filter((c) => !advertised.includes(c));
    if (absent.length) missing.push(`executeCommandProvider.commands lacks ${absent.join(', ')}`);
    return missing.length ? `the server is not ready for this test: ${missing.join('; ')}` : undefined;
}
