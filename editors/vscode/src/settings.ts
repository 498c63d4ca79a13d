/**
 * The `storyteller` settings as the server receives them. VS Code keeps a few extension-only keys
 * in the same section (`serverPath`); the server would warn about them as unknown, so they are
 * removed here before anything is sent. Pure functions: no `vscode` import, tested in node.
 */

/** Keys of the `storyteller` section that only the extension reads. */
export const EXTENSION_ONLY_KEYS: readonly string[] = ['serverPath', 'trace'];

/** Copies `section` without the extension-only keys (and without VS Code's accessor functions). */
export function serverSettings(section: unknown): Record<string, unknown> {
    if (section === null || typeof section !== 'object' || Array.isArray(section)) {
        return {};
    }
    const plain = JSON.parse(JSON.stringify(section)) as Record<string, unknown>;
    for (const key of EXTENSION_ONLY_KEYS) {
        delete plain[key];
    }
    return plain;
}

/** The language ids to serve: the `languages` setting when it is a list of strings. */
export function servedLanguages(section: unknown): string[] {
    const fallback = ['markdown', 'plaintext'];
    if (section === null || typeof section !== 'object') {
        return fallback;
    }
    const languages = (section as Record<string, unknown>).languages;
    if (Array.isArray(languages) && languages.every((l) => typeof l === 'string')) {
        return languages as string[];
    }
    return fallback;
}
