/**
 * Names of the server's LSP surface this extension relies on (DESIGN.md §3). The server owns the
 * behaviour; this file only spells the names once.
 */
import type { ProviderOp } from './providersPage/messages';

export const Commands = {
    status: 'storyteller.status',
    generate: 'storyteller.generate',
    /**
     * Not a server command: the command of the server's "Continue scene with…" code action,
     * run by this extension (it asks for the instruction, then runs `generate`).
     */
    continueSceneWith: 'storyteller.continueSceneWith',
    /** The extension's palette command: rewrite the selection in a style brief the author types. */
    rewriteInStyle: 'storyteller.rewriteInStyle',
    providers: (op: ProviderOp): string => `storyteller.providers.${op}`,
    promptsList: 'storyteller.prompts.list',
    promptsSetActive: 'storyteller.prompts.setActive',
} as const;

export const Notifications = {
    /** Same shape as the `storyteller.status` result; sent on every state change. */
    status: 'storyteller/status',
    /** The server asks the editor to show the provider settings (Open Settings, Configure...). */
    openSettings: 'storyteller/openSettings',
} as const;

/** The provider whose edit form `storyteller/openSettings {reason, providerId?}` asks for. */
export function settingsProvider(params: unknown): number | undefined {
    const id = (params as { providerId?: unknown } | null | undefined)?.providerId;
    return typeof id === 'number' && Number.isInteger(id) ? id : undefined;
}

/** The settings section (initializationOptions, didChangeConfiguration, workspace/configuration). */
export const SETTINGS_SECTION = 'storyteller';

/**
 * What this editor integration handles beyond plain LSP, announced under
 * `ClientCapabilities.experimental.storyteller`, so the server can tell an editor that opens the
 * provider settings page from one that needs the CLI hint (DESIGN.md §3 leaves this open), and
 * offer "Continue scene with…" only to an editor that runs its command (`askInstruction`).
 */
export const CLIENT_EXPERIMENTAL = {
    storyteller: { openSettings: true, statusNotification: true, askInstruction: true },
} as const;
