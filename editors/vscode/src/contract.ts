/**
 * Names of the server's LSP surface this extension relies on (DESIGN.md §3). The server owns the
 * behaviour; this file only spells the names once.
 */
import type { ProviderOp } from './providersPage/messages';

export const Commands = {
    status: 'storyteller.status',
    providers: (op: ProviderOp): string => `storyteller.providers.${op}`,
} as const;

export const Notifications = {
    /** Same shape as the `storyteller.status` result; sent on every state change. */
    status: 'storyteller/status',
    /** The server asks the editor to show the provider settings (Open Settings, Configure...). */
    openSettings: 'storyteller/openSettings',
} as const;

/** The settings section (initializationOptions, didChangeConfiguration, workspace/configuration). */
export const SETTINGS_SECTION = 'storyteller';

/**
 * What this editor integration handles beyond plain LSP, announced under
 * `ClientCapabilities.experimental.storyteller`, so the server can tell an editor that opens the
 * provider settings page from one that needs the CLI hint (DESIGN.md §3 leaves this open).
 */
export const CLIENT_EXPERIMENTAL = {
    storyteller: { openSettings: true, statusNotification: true },
} as const;
