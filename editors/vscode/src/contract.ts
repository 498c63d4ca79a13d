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
