/**
 * The server's log lines, shown in the StoryTeller output channel at the level each one carries.
 *
 * The server writes one record per line to stderr in tracing's format (src/telemetry.rs, secrets
 * already redacted there): `2026-12-06T04:19:05.434471Z  INFO initialize client="Code"`. The
 * language client's default reads every stderr line as an error; here the timestamp and level are
 * taken off (the channel adds its own) and the rest is logged at that level. A line without the
 * prefix continues the record before it (a message with a line break) and keeps its level; before
 * any record it is `info`, and a Rust panic is `error`.
 */
import * as readline from 'node:readline';
import type { Readable } from 'node:stream';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

export interface LogLine {
    level: LogLevel;
    message: string;
}

/** The part of an output channel this module writes to (vscode.LogOutputChannel has it). */
export type LevelledLog = Record<LogLevel, (message: string) => void>;

const LEVELS: Record<string, LogLevel> = {
    TRACE: 'trace',
    DEBUG: 'debug',
    INFO: 'info',
    WARN: 'warn',
    ERROR: 'error',
};

// RFC 3339 timestamp, spaces, the level padded to five characters, one space, the message.
const RECORD = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})\s+(TRACE|DEBUG|INFO|WARN|ERROR) (.*)$/;
const PANIC = /^thread '.*' panicked at /;

/**
 * The level and message of one stderr line. `previous` is the level of the record before it,
 * which a continuation line keeps; a line that is neither a record nor a continuation (what the
 * server prints outside its log, before any record) is `info`, and a Rust panic is `error`.
 */
export function parseServerLogLine(line: string, previous?: LogLevel): LogLine {
    const record = RECORD.exec(line);
    if (record) {
        return { level: LEVELS[record[1]], message: record[2] };
    }
    if (PANIC.test(line)) {
        return { level: 'error', message: line };
    }
    return { level: previous ?? 'info', message: line };
}

/** Reads `input` line by line and logs each line to `log` at its level. */
export function pipeServerLog(input: Readable, log: LevelledLog): void {
    let previous: LogLevel | undefined;
    readline
        .createInterface({ input, crlfDelay: Infinity, terminal: false, historySize: 0 })
        .on('line', (line: string) => {
            const parsed = parseServerLogLine(line, previous);
            previous = parsed.level;
            log[parsed.level](parsed.message);
        });
}
