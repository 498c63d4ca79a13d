// Locations shared by the tests: the extension folder, the repository root, the server binary.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const extensionDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const repoRoot = resolve(extensionDir, '..', '..');
/** Screenshots and other artifacts of the editor tests. */
export const artifactsDir = resolve(repoRoot, 'target', 'editors');

/** `STORYTELLER_BIN`, else the debug build of this checkout. */
export function serverBinary() {
    const fromEnv = process.env.STORYTELLER_BIN;
    if (fromEnv) return resolve(fromEnv);
    return resolve(repoRoot, 'target', 'debug', 'storyteller-lsp');
}

export function serverBinaryExists() {
    return existsSync(serverBinary());
}

/** `CHROMIUM`, else Debian's Chromium. */
export function chromiumPath() {
    return process.env.CHROMIUM || '/usr/bin/chromium';
}
