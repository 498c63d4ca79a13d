// The StoryTeller output channel shows each server log line at the level it carries (the language
// client's default shows every stderr line as [error]): the parser on each level and on continued
// and foreign lines, and the real server's stderr piped through it, warnings and all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serverBinary, serverBinaryExists } from './support/paths.mjs';
import { testEnvironment } from './support/real-server.mjs';

const require = createRequire(import.meta.url);
const { parseServerLogLine, pipeServerLog } = require('../out/src/serverLog.js');

test('each record is logged at its own level, without the timestamp and level the channel adds', () => {
    const cases = [
        ['2026-12-06T04:19:05.434471Z TRACE polled', 'trace', 'polled'],
        ['2026-12-06T04:19:05.434471Z DEBUG route chosen provider=2', 'debug', 'route chosen provider=2'],
        ['2026-12-06T04:19:05.434471Z  INFO initialize client="Visual Studio Code" encoding=UTF-16', 'info', 'initialize client="Visual Studio Code" encoding=UTF-16'],
        ['2026-12-06T04:19:05.434471Z  WARN file logging disabled: cannot create /x', 'warn', 'file logging disabled: cannot create /x'],
        ['2026-12-06T04:19:05Z ERROR provider failed kind=rate_limited', 'error', 'provider failed kind=rate_limited'],
        ['2026-12-06T04:19:05.1+01:00  INFO serve{root=1}: opened', 'info', 'serve{root=1}: opened'],
    ];
    for (const [line, level, message] of cases) {
        assert.deepEqual(parseServerLogLine(line), { level, message }, line);
    }
});

test('a line that is not a record keeps the level of the record it continues', () => {
    assert.deepEqual(parseServerLogLine('  caused by: timeout', 'warn'), { level: 'warn', message: '  caused by: timeout' });
    assert.deepEqual(parseServerLogLine('some other output'), { level: 'info', message: 'some other output' });
    // A level word elsewhere in the line is not the record's level.
    assert.deepEqual(parseServerLogLine('ERROR in the middle', 'debug'), { level: 'debug', message: 'ERROR in the middle' });
    assert.equal(parseServerLogLine("thread 'main' panicked at src/main.rs:1:1:", 'info').level, 'error');
});

/** A LogOutputChannel stand-in that records (level, message). */
function recorder() {
    const lines = [];
    const log = {};
    for (const level of ['trace', 'debug', 'info', 'warn', 'error']) {
        log[level] = (message) => lines.push([level, message]);
    }
    return { lines, log };
}

test('the real server: its start-up lines arrive as info and a warning as warn, none as error', async () => {
    assert.ok(serverBinaryExists(), `server binary not found at ${serverBinary()}`);
    const dataDir = mkdtempSync(join(tmpdir(), 'storyteller-log-'));
    // A file where the log folder should be: the server still serves and warns that file logging
    // is off (src/telemetry.rs), a real WARN line.
    writeFileSync(join(dataDir, 'logs'), '');
    const env = { ...testEnvironment(dataDir), STORYTELLER_LOG: 'info' };
    const proc = spawn(serverBinary(), ['serve'], { stdio: ['pipe', 'pipe', 'pipe'], env });
    const { lines, log } = recorder();
    pipeServerLog(proc.stderr, log);
    const exited = new Promise((resolve) => proc.on('close', resolve));
    const send = (message) => {
        const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', ...message }));
        proc.stdin.write(`Content-Length: ${body.length}\r\n\r\n`);
        proc.stdin.write(body);
    };
    let stdout = '';
    proc.stdout.on('data', (chunk) => (stdout += chunk));
    const answered = async (id) => {
        const until = Date.now() + 20000;
        while (!stdout.includes(`"id":${id}`)) {
            if (Date.now() > until) throw new Error(`no answer to request ${id}`);
            await new Promise((r) => setTimeout(r, 20));
        }
    };
    const timer = setTimeout(() => proc.kill(), 30000);
    send({ id: 1, method: 'initialize', params: { processId: null, rootUri: null, capabilities: {}, clientInfo: { name: 'Visual Studio Code' } } });
    await answered(1);
    send({ method: 'initialized', params: {} });
    send({ id: 2, method: 'shutdown' });
    await answered(2);
    send({ method: 'exit' });
    await exited;
    clearTimeout(timer);
    rmSync(dataDir, { recursive: true, force: true });

    assert.ok(lines.some(([level, m]) => level === 'info' && m.startsWith('initialize client="Visual Studio Code"')), JSON.stringify(lines));
    assert.ok(lines.some(([level, m]) => level === 'warn' && m.startsWith('file logging disabled')), JSON.stringify(lines));
    assert.deepEqual(lines.filter(([level]) => level === 'error'), [], 'no line of a clean session is an error');
    for (const [, message] of lines) {
        assert.doesNotMatch(message, /^\d{4}-\d{2}-\d{2}T/, 'the channel adds its own timestamp');
    }
});
